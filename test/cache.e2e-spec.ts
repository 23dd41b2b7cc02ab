import { mkdtemp, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { RedisServerProcess } from '../src/cache/testing/redis-server';
import { parseSse } from './support/http';
import { chatCompletion, qaFields, uniqueQuestion } from './support/qa';
import { createTestApp, TestApp } from './support/test-app';

const predict = (t: TestApp, question: string, headers: Record<string, string> = {}) =>
  request(t.server).post('/predict').set(headers).send({ question });

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size;
  return total;
}

describe('LM response cache', () => {
  describe('memory tier', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp();
    });
    afterAll(() => t.close());
    beforeEach(() => t.upstream.reset());

    it('answers a repeated question from the cache: cached, billed {}, saved usage reported, no upstream call', async () => {
      const q = uniqueQuestion();
      const first = await predict(t, q).expect(200);
      const second = await predict(t, q).expect(200);
      expect(t.upstream.calls).toBe(1);
      expect(first.body).toMatchObject({ cached: false, saved_usage: {} });
      expect(second.body).toMatchObject({ cached: true, usage: {}, cost_usd: 0, answer: first.body.answer });
      expect(second.body.saved_usage).toEqual(first.body.usage);
    });

    it('makes exactly one upstream call for 100 concurrent identical cold requests', async () => {
      const q = uniqueQuestion();
      t.upstream.respondWith(() => ({ text: chatCompletion(qaFields('coalesced')), latencyMs: 150 }));
      const responses = await Promise.all(Array.from({ length: 100 }, () => predict(t, q)));
      expect(responses.map((r) => r.status)).toEqual(Array(100).fill(200));
      expect(t.upstream.calls).toBe(1);
      expect(responses.filter((r) => r.body.cached === false)).toHaveLength(1);
      expect(new Set(responses.map((r) => r.body.answer))).toEqual(new Set([qaFields('coalesced').answer]));
      t.upstream.respondWith(null);
    });

    it('refreshes on Cache-Control: no-cache and then serves the fresh answer', async () => {
      const q = uniqueQuestion();
      t.upstream.script({ text: chatCompletion(qaFields('old')) }, { text: chatCompletion(qaFields('new')) });
      await predict(t, q).expect(200);
      const fresh = await predict(t, q, { 'Cache-Control': 'no-cache' }).expect(200);
      const after = await predict(t, q).expect(200);
      expect(t.upstream.calls).toBe(2);
      expect(fresh.body).toMatchObject({ cached: false, answer: qaFields('new').answer });
      expect(after.body).toMatchObject({ cached: true, answer: qaFields('new').answer });
    });

    it('never caches an upstream failure or an unparseable answer', async () => {
      const q = uniqueQuestion();
      t.upstream.script({ type: 'error', status: 500 });
      await predict(t, q).expect(502);
      await predict(t, q).expect(200);
      expect(t.upstream.calls).toBe(2);

      const bad = uniqueQuestion();
      t.upstream.respondWith(() => ({ text: 'no fields here' }));
      await predict(t, bad).expect(502);
      const calls = t.upstream.calls;
      t.upstream.respondWith(null);
      const good = await predict(t, bad).expect(200);
      expect(good.body.cached).toBe(false);
      expect(t.upstream.calls).toBeGreaterThan(calls);
    });

    it('replays a cached answer as token events on /predict/stream, then complete with cached: true', async () => {
      const q = uniqueQuestion();
      const first = await predict(t, q).expect(200);
      const res = await request(t.server).post('/predict/stream').send({ question: q }).expect(200);
      const { events } = parseSse(res.text);
      const tokens = events.filter((e: any) => e.type === 'token');
      expect(tokens.length).toBeGreaterThan(0);
      expect(
        tokens
          .map((e: any) => e.content)
          .join('')
          .trim(),
      ).toBe(first.body.answer);
      expect(events.at(-1)).toMatchObject({
        type: 'complete',
        cached: true,
        answer: first.body.answer,
        usage: {},
      });
      expect(t.upstream.calls).toBe(1);
    });

    it('reports hits and misses per tier in /metrics and Prometheus', async () => {
      const metrics = await request(t.server).get('/metrics').expect(200);
      expect(metrics.body.cache.tiers.memory.hits).toBeGreaterThan(0);
      expect(metrics.body.cache.tiers.memory.misses).toBeGreaterThan(0);
      const prom = await request(t.server).get('/metrics/prometheus').expect(200);
      expect(prom.text).toMatch(/cache_requests_total\{tier="memory",result="hit"\} [1-9]/);
    });
  });

  describe('disk tier', () => {
    it('survives a restart: a second process answers from disk without an upstream call', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'dspy-cache-e2e-'));
      const env = { CACHE_DISK_ENABLED: 'true', CACHE_DIR: dir };
      const q = uniqueQuestion();
      const a = await createTestApp(env);
      const first = await predict(a, q).expect(200);
      await a.close();
      const b = await createTestApp(env);
      try {
        const second = await predict(b, q).expect(200);
        expect(b.upstream.calls).toBe(0);
        expect(second.body).toMatchObject({ cached: true, answer: first.body.answer });
      } finally {
        await b.close();
      }
    });

    it('stays within its byte budget', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'dspy-cache-budget-'));
      const budget = 256 * 1024;
      const t = await createTestApp({
        CACHE_DISK_ENABLED: 'true',
        CACHE_DIR: dir,
        CACHE_DISK_SIZE: String(budget),
        CACHE_MEMORY_ENABLED: 'false',
      });
      try {
        const big = 'x'.repeat(4000);
        t.upstream.respondWith(() => ({ text: chatCompletion({ ...qaFields('big'), answer: big }) }));
        for (let i = 0; i < 200; i++) await predict(t, uniqueQuestion()).expect(200);
        const health = await request(t.server).get('/health').expect(200);
        expect(health.body.dependencies.cache.tiers.disk.bytes).toBeLessThanOrEqual(budget);
      } finally {
        await t.close();
      }
      // On disk, the closed file may exceed the counted bytes by SQLite's fixed pages, never by the workload.
      expect(await dirBytes(dir)).toBeLessThan(budget + 64 * 1024);
    });
  });

  describe('Redis tier', () => {
    it('is shared by two instances: one computes, the other hits', async () => {
      const env = { REDIS_URL: 'redis://127.0.0.1:6379' };
      const a = await createTestApp(env);
      const b = await createTestApp(env);
      try {
        const q = uniqueQuestion();
        const first = await predict(a, q).expect(200);
        const second = await predict(b, q).expect(200);
        expect(a.upstream.calls).toBe(1);
        expect(b.upstream.calls).toBe(0);
        expect(second.body).toMatchObject({ cached: true, answer: first.body.answer });
      } finally {
        await a.close();
        await b.close();
      }
    });

    describe('when Redis dies or freezes mid-run', () => {
      let redis: RedisServerProcess;
      let t: TestApp;
      beforeAll(async () => {
        redis = await RedisServerProcess.start();
        t = await createTestApp({ REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '100' });
      });
      afterAll(async () => {
        await t.close();
        await redis.kill();
      });

      it('keeps answering while Redis is frozen, reports it in /health, and stays ready', async () => {
        await predict(t, uniqueQuestion()).expect(200);
        redis.freeze();
        try {
          const results = await Promise.all(Array.from({ length: 20 }, () => predict(t, uniqueQuestion())));
          expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
          const health = await request(t.server).get('/health').expect(200);
          expect(health.body.status).toBe('degraded');
          expect(health.body.dependencies.cache.down).toContain('redis');
          await request(t.server).get('/health/ready').expect(200);
        } finally {
          redis.thaw();
        }
      });

      it('keeps answering after Redis is killed', async () => {
        await redis.kill();
        const results = await Promise.all(Array.from({ length: 20 }, () => predict(t, uniqueQuestion())));
        expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
      });
    });
  });
});
