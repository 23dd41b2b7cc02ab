import request from 'supertest';
import { dspyResponder } from '../support/fake-openai';
import { expectProblem } from '../support/http';
import { createTestApp } from '../support/test-app';

/** mulberry32: a seeded PRNG, so the fault pattern (and the figures) are the same on every run. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// retry-after-ms keeps the SDK's backoff short in tests; Retry-After (seconds) is what clients are told.
const FAST_RETRY = { 'retry-after-ms': '5', 'retry-after': '2' };

describe('upstream faults', () => {
  it('429 storm: every failure is 429 or 503 with an integer Retry-After, never 500, attempts bounded', async () => {
    const MAX_RETRIES = 2;
    const REQUESTS = 20;
    const t = await createTestApp(
      { LM_MAX_RETRIES: String(MAX_RETRIES), CIRCUIT_FAILURE_THRESHOLD: '5', CIRCUIT_OPEN_MS: '60000' },
      { responder: () => ({ type: 'error', status: 429, headers: FAST_RETRY }) },
    );
    try {
      const statuses: number[] = [];
      for (let i = 0; i < REQUESTS; i++) {
        const res = await request(t.server)
          .post('/predict')
          .send({ question: `storm ${i}?` });
        statuses.push(res.status);
        expect([429, 503]).toContain(res.status);
        expect(res.headers['retry-after']).toMatch(/^[1-9]\d*$/);
        expectProblem(res, res.status, res.status === 429 ? 'lm_rate_limited' : 'service_unavailable');
      }
      // The SDK's retries are the only layer: at most 1 + LM_MAX_RETRIES attempts per request that got through,
      // and none once the circuit is open.
      const admitted = statuses.filter((s) => s === 429).length;
      expect(t.upstream.calls).toBeLessThanOrEqual(admitted * (1 + MAX_RETRIES));
      expect(admitted).toBe(5);
      expect(statuses.filter((s) => s === 503)).toHaveLength(REQUESTS - 5);
      console.info(`429 storm: ${JSON.stringify({ admitted, upstreamCalls: t.upstream.calls, statuses })}`);
    } finally {
      await t.close();
    }
  });

  it('20% random upstream 5xx: >= 98% of requests succeed through the SDK retries', async () => {
    const random = seeded(7);
    let injected = 0;
    const t = await createTestApp(
      { LM_MAX_RETRIES: '2', CIRCUIT_FAILURE_THRESHOLD: '5' },
      {
        responder: (req) => {
          if (random() < 0.2) {
            injected++;
            return { type: 'error', status: random() < 0.5 ? 500 : 503, headers: FAST_RETRY };
          }
          return dspyResponder(req);
        },
      },
    );
    try {
      const REQUESTS = 100;
      const statuses: number[] = [];
      for (let i = 0; i < REQUESTS; i++) {
        statuses.push(
          (
            await request(t.server)
              .post('/predict')
              .send({ question: `flaky ${i}?` })
          ).status,
        );
      }
      const ok = statuses.filter((s) => s === 200).length;
      expect(injected).toBeGreaterThan(10);
      expect(ok / REQUESTS).toBeGreaterThanOrEqual(0.98);
      expect(statuses.filter((s) => s >= 500 && s !== 502 && s !== 503)).toHaveLength(0);
      console.info(`20% 5xx: ${JSON.stringify({ ok, injected, upstreamCalls: t.upstream.calls })}`);
    } finally {
      await t.close();
    }
  });

  it('circuit breaker: opens after the threshold (fails fast, no upstream call), half-opens, closes on success', async () => {
    const t = await createTestApp({ CIRCUIT_FAILURE_THRESHOLD: '3', CIRCUIT_OPEN_MS: '300' });
    try {
      t.upstream.script(
        { type: 'error', status: 500 },
        { type: 'error', status: 500 },
        { type: 'error', status: 500 },
      );
      for (let i = 0; i < 3; i++) {
        expectProblem(
          await request(t.server)
            .post('/predict')
            .send({ question: `fail ${i}?` }),
          502,
          'lm_server_error',
        );
      }
      expect(t.upstream.calls).toBe(3);
      const open = await request(t.server).post('/predict').send({ question: 'while open?' });
      expectProblem(open, 503, 'service_unavailable');
      expect(open.headers['retry-after']).toBe('1');
      expect(t.upstream.calls).toBe(3);
      // Streams fail fast too, before the first byte: a plain 503 problem.
      const stream = await request(t.server).post('/predict/stream').send({ question: 'stream while open?' });
      expectProblem(stream, 503, 'service_unavailable');
      expect(t.upstream.calls).toBe(3);

      await new Promise((resolve) => setTimeout(resolve, 350));
      // Half-open: one trial goes through and, succeeding, closes the circuit.
      expect((await request(t.server).post('/predict').send({ question: 'trial?' })).status).toBe(200);
      expect((await request(t.server).post('/predict').send({ question: 'closed again?' })).status).toBe(200);
      expect(t.upstream.calls).toBe(5);
    } finally {
      await t.close();
    }
  });
});
