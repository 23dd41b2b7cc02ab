import request from 'supertest';
import { dspyResponder, type FakeResponder } from '../support/fake-openai';
import { expectDoneLast, expectProblem, openRequest, parseSse, readUntil, waitFor } from '../support/http';
import { createTestApp, type TestApp } from '../support/test-app';

/** A responder that holds every upstream call until `open()`. */
function gated(): { responder: FakeResponder; open(): void } {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  return {
    responder: async (req) => {
      await gate;
      return dspyResponder(req);
    },
    open,
  };
}

describe('load shedding at 4x capacity', () => {
  const CAPACITY = 4;
  const QUEUE = 2;
  let t: TestApp;
  const gate = gated();
  beforeAll(async () => {
    t = await createTestApp(
      {
        MAX_CONCURRENT_PREDICTIONS: String(CAPACITY),
        PREDICTION_QUEUE_SIZE: String(QUEUE),
        PREDICTION_QUEUE_TIMEOUT_MS: '30000',
        OVERLOAD_RETRY_AFTER_S: '2',
      },
      { responder: gate.responder },
    );
  });
  afterAll(() => t.close());

  it('refuses the excess with 503 + Retry-After while admitted requests wait on the upstream, then serves them', async () => {
    const total = CAPACITY * 4;
    const done: request.Response[] = [];
    const pending = Array.from({ length: total }, (_, i) =>
      request(t.server)
        .post('/predict')
        .send({ question: `saturation question ${i}?` })
        .then((res) => {
          done.push(res);
          return res;
        }),
    );
    // Every refusal arrives while the upstream still holds every admitted call: shedding costs no upstream work.
    await waitFor(() => done.length === total - CAPACITY - QUEUE, 'the excess to be refused');
    expect(t.upstream.calls).toBe(CAPACITY);
    for (const res of done) {
      expectProblem(res, 503, 'service_unavailable');
      expect(res.headers['retry-after']).toBe('2');
    }
    // Liveness is not behind the limiter.
    expect((await request(t.server).get('/health/live')).status).toBe(200);

    gate.open();
    const all = await Promise.all(pending);
    const statuses = all.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(CAPACITY + QUEUE);
    expect(statuses.filter((s) => s === 503)).toHaveLength(total - CAPACITY - QUEUE);
    expect(t.upstream.calls).toBe(CAPACITY + QUEUE);
  });

  it('gives a queued request 503 when the queue timeout expires', async () => {
    const t2 = await createTestApp(
      { MAX_CONCURRENT_PREDICTIONS: '1', PREDICTION_QUEUE_SIZE: '1', PREDICTION_QUEUE_TIMEOUT_MS: '50' },
      { responder: gated().responder },
    );
    try {
      const first = openRequest(t2.server, 'POST', '/predict', { question: 'held forever?' });
      await waitFor(() => t2.upstream.calls === 1, 'the first call to reach the upstream');
      const queued = await request(t2.server).post('/predict').send({ question: 'queued?' });
      expectProblem(queued, 503, 'service_unavailable');
      expect(queued.headers['retry-after']).toMatch(/^[1-9]\d*$/);
      expect(t2.upstream.calls).toBe(1);
      first.disconnect();
    } finally {
      await t2.close();
    }
  });
});

describe('graceful shutdown (driven in-process through app.close(), the path SIGTERM takes)', () => {
  it('fails readiness, refuses new predictions, lets short requests finish and ends open streams with a retryable event', async () => {
    let quickRelease!: () => void;
    const quickGate = new Promise<void>((resolve) => (quickRelease = resolve));
    const t = await createTestApp(
      { SHUTDOWN_GRACE_MS: '400', STREAM_HEARTBEAT_MS: '60000', MAX_CONCURRENT_PREDICTIONS: '100' },
      {
        responder: async (req) => {
          if (JSON.stringify(req.body).includes('quick')) {
            await quickGate;
            return dspyResponder(req);
          }
          return { type: 'hang' };
        },
      },
    );
    const STREAMS = 20;
    const streams = Array.from({ length: STREAMS }, (_, i) =>
      openRequest(t.server, 'POST', '/predict/stream', { question: `stream ${i}?` }),
    );
    const quick = request(t.server)
      .post('/predict')
      .send({ question: 'quick one?' })
      .then((r) => r);
    await waitFor(() => t.upstream.calls === STREAMS + 1, 'every call to reach the upstream');

    const closing = t.app.close();
    const ready = await request(t.server).get('/health/ready');
    expect(ready.status).toBe(503);
    const refused = await request(t.server).post('/predict').send({ question: 'too late?' });
    expectProblem(refused, 503, 'service_draining');
    expect(refused.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(t.upstream.calls).toBe(STREAMS + 1);

    // An in-flight request that finishes within the grace period is answered normally.
    quickRelease();
    expect((await quick).status).toBe(200);

    const bodies = await Promise.all(
      streams.map(async (s) => readUntil(await s.response, (text) => text.includes('[DONE]'))),
    );
    await closing;
    for (const body of bodies) {
      const sse = parseSse(body);
      expectDoneLast(sse);
      expect(sse.events.at(-1)).toMatchObject({
        type: 'error',
        code: 'service_draining',
        status: 503,
        retryable: true,
      });
    }
    // Every held upstream call was aborted, none left running.
    await waitFor(() => t.upstream.clientAborts >= STREAMS, 'the upstream calls to be aborted');
    expect(t.upstream.clientAborts).toBe(STREAMS);
    await t.upstream.close();
  });
});
