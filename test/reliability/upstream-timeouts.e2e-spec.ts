import { createServer, type AddressInfo, type Socket } from 'node:net';
import request from 'supertest';
import type { FakeAction } from '../support/fake-openai';
import { expectDoneLast, expectProblem, parseSse, tokensOf, waitFor } from '../support/http';
import { chatCompletion, qaFields, uniqueQuestion } from '../support/qa';
import { createTestApp } from '../support/test-app';

const TIMEOUT_EVENT = {
  type: 'error',
  code: 'lm_timeout',
  detail: 'The language model provider did not answer in time.',
  status: 504,
  retryable: true,
};

/**
 * How long the fake may still see connections once every exchange was aborted. An aborted exchange's socket is
 * destroyed at once, but the client pool may already have opened a spare one that carries no request; it closes
 * when its keep-alive timeout (undici's 4 s) passes, so waiting for 0 open sockets takes up to that long.
 */
const IDLE_SOCKETS_MS = 10_000;

/** A ChatAdapter answer whose `answer` field streams as `words`. */
function streamedAnswer(words: string[]): string[] {
  return ['[[ ## reasoning ## ]]\nR\n\n[[ ## answer ## ]]\n', ...words];
}

describe('upstream timeouts', () => {
  jest.setTimeout(30_000);

  it('never-answering upstream: concurrent /predict end with 504 at the deadline, attempts bounded, no socket left open', async () => {
    const REQUESTS = 20;
    const MAX_RETRIES = 2;
    const DEADLINE_MS = 1500;
    const t = await createTestApp({
      LM_TIMEOUT_MS: '400',
      LM_MAX_RETRIES: String(MAX_RETRIES),
      REQUEST_DEADLINE_MS: String(DEADLINE_MS),
    });
    t.upstream.respondWith(() => ({ type: 'hang' }));
    try {
      const results = await Promise.all(
        Array.from({ length: REQUESTS }, async () => {
          const started = Date.now();
          const res = await request(t.server).post('/predict').send({ question: uniqueQuestion() });
          return { res, ms: Date.now() - started };
        }),
      );
      for (const { res, ms } of results) {
        expectProblem(res, 504, 'lm_timeout');
        // Not before the deadline (the attempts alone would have gone on longer); a generous upper bound.
        expect(ms).toBeGreaterThanOrEqual(DEADLINE_MS - 50);
        expect(ms).toBeLessThan(DEADLINE_MS + 5000);
      }
      // Each request: at most 1 + LM_MAX_RETRIES attempts (a timeout is no parse error: no adapter fallback).
      expect(t.upstream.calls).toBeGreaterThanOrEqual(REQUESTS);
      expect(t.upstream.calls).toBeLessThanOrEqual(REQUESTS * (1 + MAX_RETRIES));
      expect(t.upstream.requests.every((r) => r.outcome === 'aborted')).toBe(true);
      const settled = Date.now();
      await waitFor(() => t.upstream.openSockets === 0, 'every upstream socket to close', IDLE_SOCKETS_MS);
      const ms = results.map((r) => r.ms);
      console.info(
        `never-answering upstream: ${JSON.stringify({
          requests: REQUESTS,
          status504: results.filter((r) => r.res.status === 504).length,
          upstreamCalls: t.upstream.calls,
          connections: t.upstream.connections,
          socketsClosedAfterMs: Date.now() - settled,
          minMs: Math.min(...ms),
          maxMs: Math.max(...ms),
        })}`,
      );
    } finally {
      await t.close();
    }
  });

  it('never-answering upstream: identical concurrent questions (one shared call) all end with 504, none with 499', async () => {
    const t = await createTestApp({ LM_TIMEOUT_MS: '5000', REQUEST_DEADLINE_MS: '800' });
    t.upstream.respondWith(() => ({ type: 'hang' }));
    try {
      const question = uniqueQuestion();
      const responses = await Promise.all(
        Array.from({ length: 5 }, () => request(t.server).post('/predict').send({ question })),
      );
      for (const res of responses) expectProblem(res, 504, 'lm_timeout');
      await waitFor(() => t.upstream.openSockets === 0, 'every upstream socket to close', IDLE_SOCKETS_MS);
    } finally {
      await t.close();
    }
  });

  it('stream stalls after some tokens: token events, then an lm_timeout error event and [DONE]; socket closed; nothing cached', async () => {
    const t = await createTestApp({ LM_STREAM_IDLE_TIMEOUT_MS: '300', REQUEST_DEADLINE_MS: '10000' });
    try {
      const question = uniqueQuestion();
      t.upstream.script({
        chunks: streamedAnswer(['Partial ', 'answer ', 'never ', 'sent']),
        hangAfterChunks: 3,
      });
      const res = await request(t.server).post('/predict/stream').send({ question });
      expect(res.status).toBe(200);
      const sse = parseSse(res.text);
      expectDoneLast(sse);
      expect(tokensOf(sse, 'answer').length).toBeGreaterThan(0);
      expect(sse.events.at(-1)).toEqual(TIMEOUT_EVENT);
      await expect(t.upstream.requests[0].closed).resolves.toBe('aborted');
      await waitFor(() => t.upstream.openSockets === 0, 'the upstream socket to close');

      // Nothing was cached: the same question reaches the upstream again, and completes.
      const fields = qaFields('stalled stream');
      t.upstream.script({ text: chatCompletion(fields) });
      const again = parseSse((await request(t.server).post('/predict/stream').send({ question })).text);
      expectDoneLast(again);
      expect(again.events.at(-1)).toMatchObject({ type: 'complete', answer: fields.answer, cached: false });
      expect(t.upstream.calls).toBe(2);
      console.info(
        `stalled stream: ${JSON.stringify({ tokens: tokensOf(sse, 'answer').length, last: sse.events.at(-1), upstreamCalls: t.upstream.calls })}`,
      );
    } finally {
      await t.close();
    }
  });

  it('stream still flowing when the deadline passes: token events, then an lm_timeout error event and [DONE]', async () => {
    const t = await createTestApp({ LM_STREAM_IDLE_TIMEOUT_MS: '5000', REQUEST_DEADLINE_MS: '800' });
    try {
      const words = Array.from({ length: 40 }, (_, i) => `w${i} `);
      t.upstream.script({ chunks: streamedAnswer(words), chunkDelayMs: 50 });
      const res = await request(t.server).post('/predict/stream').send({ question: uniqueQuestion() });
      const sse = parseSse(res.text);
      expectDoneLast(sse);
      const tokens = tokensOf(sse, 'answer').length;
      expect(tokens).toBeGreaterThan(0);
      expect(tokens).toBeLessThan(words.length);
      expect(sse.events.at(-1)).toEqual(TIMEOUT_EVENT);
      await expect(t.upstream.requests[0].closed).resolves.toBe('aborted');
      expect(t.upstream.calls).toBe(1);
      console.info(`deadline mid-stream: ${JSON.stringify({ tokens, of: words.length })}`);
    } finally {
      await t.close();
    }
  });

  it('first-token timeout: a stream with headers but no chunk ends with a 504 problem, one attempt, socket closed', async () => {
    const t = await createTestApp({
      LM_FIRST_TOKEN_TIMEOUT_MS: '300',
      LM_MAX_RETRIES: '2',
      REQUEST_DEADLINE_MS: '10000',
    });
    try {
      t.upstream.script({ type: 'hang', headers: true });
      const res = await request(t.server).post('/predict/stream').send({ question: uniqueQuestion() });
      expectProblem(res, 504, 'lm_timeout');
      await expect(t.upstream.requests[0].closed).resolves.toBe('aborted');
      // Past the headers a stream is never retried.
      expect(t.upstream.calls).toBe(1);
      await waitFor(() => t.upstream.openSockets === 0, 'the upstream socket to close');
    } finally {
      await t.close();
    }
  });

  it('whole-call timeout: a completion whose body never ends is cut per attempt and retried, then 504', async () => {
    const t = await createTestApp({
      LM_TIMEOUT_MS: '300',
      LM_MAX_RETRIES: '1',
      REQUEST_DEADLINE_MS: '10000',
    });
    t.upstream.respondWith(() => ({ type: 'hang', headers: true, body: '{"id":"chatcmpl-x","choi' }));
    try {
      const res = await request(t.server).post('/predict').send({ question: uniqueQuestion() });
      expectProblem(res, 504, 'lm_timeout');
      expect(t.upstream.calls).toBe(2);
      await Promise.all(t.upstream.requests.map((r) => expect(r.closed).resolves.toBe('aborted')));
      await waitFor(() => t.upstream.openSockets === 0, 'every upstream socket to close');
    } finally {
      await t.close();
    }
  });

  it('connect timeout: an https upstream whose TLS handshake never completes ends with 504', async () => {
    // Connect stalls cannot be made on loopback (the kernel completes the TCP handshake; this sandbox even answers
    // SYNs to unroutable addresses), so the stall is in the TLS half of connect: a server that accepts and is silent.
    const sockets = new Set<Socket>();
    let connections = 0;
    const silent = createServer((socket) => {
      connections++;
      sockets.add(socket);
      // Reading (and dropping) the ClientHello is what lets this side see the client close.
      socket.resume();
      socket.on('error', () => undefined).on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    const MAX_RETRIES = 1;
    // undici's connect timer ticks coarsely (~1 s for 200 ms); the deadline leaves room for both connects.
    const DEADLINE_MS = 6000;
    const t = await createTestApp({
      OPENAI_BASE_URL: `https://127.0.0.1:${(silent.address() as AddressInfo).port}/v1`,
      LM_CONNECT_TIMEOUT_MS: '200',
      LM_TIMEOUT_MS: '20000',
      LM_MAX_RETRIES: String(MAX_RETRIES),
      REQUEST_DEADLINE_MS: String(DEADLINE_MS),
    });
    try {
      const started = Date.now();
      const res = await request(t.server).post('/predict').send({ question: uniqueQuestion() });
      const ms = Date.now() - started;
      expectProblem(res, 504, 'lm_timeout');
      // Each attempt's connect was cut by LM_CONNECT_TIMEOUT_MS and retried, all before the deadline.
      expect(connections).toBe(1 + MAX_RETRIES);
      expect(ms).toBeLessThan(DEADLINE_MS);
      await waitFor(() => sockets.size === 0, 'the stalled connections to close');
    } finally {
      await t.close();
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  describe('malformed upstream bodies', () => {
    it.each<[string, FakeAction]>([
      ['200 with a non-JSON body', { type: 'raw', body: '<html><h1>502 Bad Gateway</h1></html>' }],
      [
        '200 with JSON lacking choices',
        { type: 'raw', body: '{"id":"chatcmpl-x","object":"chat.completion"}' },
      ],
      [
        '200 with the wrong content type',
        { type: 'raw', contentType: 'text/html', body: '<html>Sign in</html>' },
      ],
    ])('/predict: %s is a 502 problem, and nothing is cached', async (_name, action) => {
      const t = await createTestApp();
      try {
        const question = uniqueQuestion();
        t.upstream.script(action);
        expectProblem(
          await request(t.server).post('/predict').send({ question }),
          502,
          'lm_unexpected_response',
        );
        expect(t.upstream.calls).toBe(1);
        const again = await request(t.server).post('/predict').send({ question });
        expect(again.status).toBe(200);
        expect(again.body.cached).toBe(false);
        expect(t.upstream.calls).toBe(2);
      } finally {
        await t.close();
      }
    });

    it('/predict/stream: an event stream of garbage lines is a 502 problem, and nothing is cached', async () => {
      const t = await createTestApp();
      try {
        const question = uniqueQuestion();
        t.upstream.script({
          type: 'raw',
          contentType: 'text/event-stream',
          body: 'data: {"id":"chatcmpl-x","choices":[{"ind\n\ndata: <<garbage>>\n\n',
        });
        expectProblem(
          await request(t.server).post('/predict/stream').send({ question }),
          502,
          'lm_unexpected_response',
        );
        expect(t.upstream.calls).toBe(1);
        const again = parseSse((await request(t.server).post('/predict/stream').send({ question })).text);
        expectDoneLast(again);
        expect(again.events.at(-1)).toMatchObject({ type: 'complete', cached: false });
        expect(t.upstream.calls).toBe(2);
      } finally {
        await t.close();
      }
    });
  });
});
