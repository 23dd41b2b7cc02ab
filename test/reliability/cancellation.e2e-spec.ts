import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { AdmissionService } from '../../src/program/admission.service';
import type { ExchangeOutcome, FakeOpenAI } from '../support/fake-openai';
import { waitFor } from '../support/http';
import { chatCompletion, qaFields, questionOf, uniqueQuestion } from '../support/qa';
import { hasToken, rawRequest, type Target } from '../support/sse-client';
import { createTestApp, type TestApp } from '../support/test-app';

/** A long answer streamed a word at a time: a client that leaves after its first token leaves seconds early. */
const LONG_ANSWER = Array.from({ length: 150 }, (_, i) => `word${i}`).join(' ');

/** How every upstream exchange ended, once all of them are over. */
async function outcomes(upstream: FakeOpenAI): Promise<Record<ExchangeOutcome, number>> {
  const ends = await Promise.all(upstream.requests.map((r) => r.closed));
  const counts: Record<ExchangeOutcome, number> = { finished: 0, aborted: 0, reset: 0 };
  for (const end of ends) counts[end] += 1;
  return counts;
}

async function reliability(t: TestApp): Promise<Record<string, any>> {
  return (await request(t.server).get('/metrics').expect(200)).body as Record<string, any>;
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('client disconnects cancel the work behind them', () => {
  let t: TestApp;
  let target: Target;
  beforeAll(async () => {
    t = await createTestApp({
      MAX_CONCURRENT_PREDICTIONS: '256',
      PREDICTION_QUEUE_SIZE: '0',
      STREAM_HEARTBEAT_MS: '60000',
      BATCH_CONCURRENCY: '2',
    });
    target = { port: (t.server.address() as AddressInfo).port };
  });
  afterAll(() => t.close());
  beforeEach(() => {
    t.upstream.reset();
    t.upstream.respondWith(null);
  });

  it('200 concurrent streams that leave after their first token: 200/200 upstream calls aborted, gauges back to 0', async () => {
    const STREAMS = 200;
    t.upstream.respondWith(() => ({
      text: chatCompletion({ ...qaFields('cancel'), answer: LONG_ANSWER }),
      chunkDelayMs: 20,
    }));
    const before = await reliability(t);

    const questions = Array.from({ length: STREAMS }, () => uniqueQuestion('stream cancel'));
    const leftAt = new Map<string, number>();
    const abortedAt = new Map<string, number>();
    // Note when each upstream exchange ends, as it ends (the fake records it; this only timestamps it).
    let watched = 0;
    const watcher = setInterval(() => {
      for (const r of t.upstream.requests.slice(watched)) {
        void r.closed.then(() => abortedAt.set(String(questionOf(r.body)), performance.now()));
      }
      watched = t.upstream.requests.length;
    }, 2);
    const clients = questions.map((question) => rawRequest(target, 'POST', '/predict/stream', { question }));
    const gotToken = await Promise.all(
      clients.map(async (c, i) => {
        const head = await c.head;
        await c.until(hasToken);
        leftAt.set(questions[i], performance.now());
        c.disconnect();
        return head.status;
      }),
    );
    expect(gotToken).toEqual(Array(STREAMS).fill(200));

    const ends = await outcomes(t.upstream);
    clearInterval(watcher);
    expect(t.upstream.calls).toBe(STREAMS);
    expect(ends).toEqual({ finished: 0, aborted: STREAMS, reset: 0 });
    // How long after its client left each upstream call was dropped.
    const lags = questions
      .map((q) => (abortedAt.get(q) ?? NaN) - (leftAt.get(q) ?? NaN))
      .sort((a, b) => a - b);
    expect(lags.every((ms) => Number.isFinite(ms))).toBe(true);

    await waitFor(() => t.app.get(AdmissionService).inFlight === 0, 'every admission slot back');
    const after = await reliability(t);
    expect(after.open_streams).toBe(0);
    expect(after.reliability.in_flight).toBe(0);
    // The LM's circuit breaker is published (off here: CIRCUIT_FAILURE_THRESHOLD=0 keeps it closed).
    expect(after.reliability.circuit).toMatchObject({ state: 'closed', state_value: 0 });
    expect(after.reliability.client_disconnects.stream - before.reliability.client_disconnects.stream).toBe(
      STREAMS,
    );
    // A client that left is not an error. Its tokens still count: the usage chunk comes last, so each aborted
    // stream adds an estimate (prompt characters / 4, one token per delta received), never nothing.
    expect(after.total_errors).toBe(before.total_errors);
    expect(after.total_requests).toBe(before.total_requests);
    const partialTokens = after.total_tokens - before.total_tokens;
    expect(partialTokens).toBeGreaterThan(STREAMS);
    const prom = (await request(t.server).get('/metrics/prometheus').expect(200)).text;
    // The LM calls are counted as aborted, not as upstream errors.
    expect(sample(prom, 'lm_requests_total{model="openai/gpt-4o-mini",outcome="aborted"}')).toBe(STREAMS);
    expect(sample(prom, 'lm_requests_total{model="openai/gpt-4o-mini",outcome="error"}') ?? 0).toBe(0);
    expect(sample(prom, 'open_streams')).toBe(0);
    expect(sample(prom, 'admission_in_flight')).toBe(0);
    expect(sample(prom, 'client_disconnects_total{route="stream"}')).toBeGreaterThanOrEqual(STREAMS);

    // Every slot was released: a full-capacity burst is admitted again.
    t.upstream.respondWith(null);
    const next = await request(t.server)
      .post('/predict')
      .send({ question: uniqueQuestion('after') });
    expect(next.status).toBe(200);
    console.info(
      `stream cancellation: ${JSON.stringify({
        streams: STREAMS,
        upstream: ends,
        openStreams: after.open_streams,
        inFlight: after.reliability.in_flight,
        disconnects: after.reliability.client_disconnects,
        abortLagMs: { p50: Math.round(lags[STREAMS / 2]), max: Math.round(lags[STREAMS - 1]) },
        partialTokens,
      })}`,
    );
  });

  it('50 /predict clients that leave mid-call: 50/50 upstream calls aborted, no errors counted', async () => {
    const CLIENTS = 50;
    t.upstream.respondWith(() => ({ type: 'hang' }));
    const before = await reliability(t);
    const clients = Array.from({ length: CLIENTS }, () =>
      rawRequest(target, 'POST', '/predict', { question: uniqueQuestion('predict cancel') }),
    );
    await waitFor(() => t.upstream.calls === CLIENTS, 'every call to reach the upstream');
    for (const c of clients) c.disconnect();

    const ends = await outcomes(t.upstream);
    expect(ends).toEqual({ finished: 0, aborted: CLIENTS, reset: 0 });
    await waitFor(() => t.app.get(AdmissionService).inFlight === 0, 'every admission slot back');
    const after = await reliability(t);
    expect(after.reliability.client_disconnects.predict - before.reliability.client_disconnects.predict).toBe(
      CLIENTS,
    );
    expect(after.total_errors).toBe(before.total_errors);
    t.upstream.respondWith(null);
    expect((await request(t.server).post('/predict').send({ question: uniqueQuestion() })).status).toBe(200);
    console.info(`predict cancellation: ${JSON.stringify({ clients: CLIENTS, upstream: ends })}`);
  });

  it('a /batch client that leaves: the running items are aborted and the rest never start', async () => {
    const ITEMS = 10;
    t.upstream.respondWith(() => ({ type: 'hang' }));
    const before = await reliability(t);
    const client = rawRequest(
      target,
      'POST',
      '/batch',
      Array.from({ length: ITEMS }, () => ({ question: uniqueQuestion('batch cancel') })),
    );
    // BATCH_CONCURRENCY=2: two items are at the upstream, eight wait.
    await waitFor(() => t.upstream.calls === 2, 'the first two items to reach the upstream');
    client.disconnect();
    const ends = await outcomes(t.upstream);
    await waitFor(() => t.app.get(AdmissionService).inFlight === 0, 'the batch slot back');
    // Long enough for any item that would still start to reach the upstream.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(t.upstream.calls).toBe(2);
    expect(ends).toEqual({ finished: 0, aborted: 2, reset: 0 });
    const after = await reliability(t);
    expect(after.reliability.client_disconnects.batch - before.reliability.client_disconnects.batch).toBe(1);
    console.info(
      `batch cancellation: ${JSON.stringify({ items: ITEMS, upstreamCalls: t.upstream.calls, upstream: ends })}`,
    );
  });
});
