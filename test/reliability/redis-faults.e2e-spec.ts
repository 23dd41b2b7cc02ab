import Redis from 'ioredis';
import request from 'supertest';
import { RedisServerProcess } from '../../src/cache/testing/redis-server';
import { eventually } from '../support/http';
import { uniqueQuestion } from '../support/qa';
import { createTestApp, type TestApp } from '../support/test-app';
import { mapWithConcurrency } from '../../src/program/program.service';

type Phase = 'before' | 'fault' | 'after';

interface Sample {
  phase: Phase;
  status: number;
  cached: boolean | undefined;
  ms: number;
}

interface Probe {
  health: number;
  healthStatus: string;
  cacheDown: string[];
  ready: number;
}

const TOTAL = 400;
const CONCURRENCY = 20;
const WARM = 40;

/** Keys in the private Redis matching `pattern` (a short-lived client of the test's own). */
async function redisKeys(url: string, pattern: string): Promise<string[]> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 500 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.keys(pattern);
  } finally {
    client.disconnect();
  }
}

function quantile(values: number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(Math.floor(sorted.length * q), sorted.length - 1)]);
}

/** Status, cache hits and latency per phase: what the report quotes. */
function summarize(samples: Sample[]) {
  const of = (phase: Phase) => samples.filter((s) => s.phase === phase);
  const describe = (list: Sample[]) => ({
    requests: list.length,
    non200: list.filter((s) => s.status !== 200).length,
    hits: list.filter((s) => s.cached === true).length,
    p50Ms: quantile(
      list.map((s) => s.ms),
      0.5,
    ),
    p99Ms: quantile(
      list.map((s) => s.ms),
      0.99,
    ),
    maxMs: Math.round(Math.max(0, ...list.map((s) => s.ms))),
  });
  return { before: describe(of('before')), fault: describe(of('fault')), after: describe(of('after')) };
}

describe('Redis killed or frozen under sustained load', () => {
  let redis: RedisServerProcess;
  let t: TestApp;
  const warm = Array.from({ length: WARM }, () => uniqueQuestion('warm'));

  beforeAll(async () => {
    redis = await RedisServerProcess.start();
    t = await createTestApp({
      REDIS_URL: redis.url,
      REDIS_COMMAND_TIMEOUT_MS: '100',
      // High enough never to trigger: the limiter's counters live in the same Redis and must fall back.
      RATE_LIMIT: '1000000',
      MAX_CONCURRENT_PREDICTIONS: '64',
    });
    for (const question of warm) await request(t.server).post('/predict').send({ question }).expect(200);
  }, 30_000);
  afterAll(async () => {
    await t.close();
    await redis.kill();
  });

  /**
   * TOTAL requests at CONCURRENCY, every other one a warm question (a memory hit) and the rest new (a miss that
   * reads and writes Redis). `fault` runs when `faultAt` requests have finished, `heal` (if any) at `healAt`;
   * /health and /health/ready are probed while the fault is on.
   */
  async function loadWith(plan: {
    faultAt: number;
    fault: () => void | Promise<void>;
    healAt?: number;
    heal?: () => void | Promise<void>;
  }): Promise<{ samples: Sample[]; probes: Probe[] }> {
    let finished = 0;
    let phase: Phase = 'before';
    const actions: Promise<unknown>[] = [];
    const probes: Promise<Probe>[] = [];
    const probe = async (): Promise<Probe> => {
      const health = await request(t.server).get('/health');
      const ready = await request(t.server).get('/health/ready');
      return {
        health: health.status,
        healthStatus: String(health.body.status),
        cacheDown: (health.body.dependencies?.cache?.down as string[] | undefined) ?? [],
        ready: ready.status,
      };
    };
    const onFinished = () => {
      finished += 1;
      if (finished === plan.faultAt) {
        phase = 'fault';
        actions.push(Promise.resolve(plan.fault()));
      }
      if (finished === plan.faultAt + 40 || finished === plan.faultAt + 80) probes.push(probe());
      if (plan.healAt !== undefined && finished === plan.healAt) {
        actions.push(Promise.resolve(plan.heal?.()).then(() => (phase = 'after')));
      }
    };
    const indexes = Array.from({ length: TOTAL }, (_, i) => i);
    const samples = await mapWithConcurrency(indexes, CONCURRENCY, async (i): Promise<Sample> => {
      const question = i % 2 === 0 ? warm[(i / 2) % WARM] : uniqueQuestion('load');
      const started = performance.now();
      const at = phase;
      const res = await request(t.server).post('/predict').send({ question });
      const sample = {
        phase: at,
        status: res.status,
        cached: res.body?.cached as boolean | undefined,
        ms: performance.now() - started,
      };
      onFinished();
      return sample;
    });
    await Promise.all(actions);
    return { samples, probes: await Promise.all(probes) };
  }

  /** A new answer reaches the restarted or thawed Redis: the cache tier reconnected (and the limiter). */
  async function expectReconnected(): Promise<{ lmKeys: number; limiterKeys: number }> {
    const seen = await eventually(
      async () => {
        await request(t.server)
          .post('/predict')
          .send({ question: uniqueQuestion('reconnect') });
        return {
          lmKeys: (await redisKeys(redis.url, 'dspy:lm:*')).length,
          limiterKeys: (await redisKeys(redis.url, '*:hits')).length,
        };
      },
      (keys) => keys.lmKeys > 0 && keys.limiterKeys > 0,
      15_000,
    );
    expect(seen.lmKeys).toBeGreaterThan(0);
    expect(seen.limiterKeys).toBeGreaterThan(0);
    return seen;
  }

  it('SIGKILL mid-load: every response 200, hits keep coming from memory, probes 200; reconnects on restart', async () => {
    const { samples, probes } = await loadWith({ faultAt: 100, fault: () => redis.kill() });
    const figures = summarize(samples);
    expect(samples.map((s) => s.status)).toEqual(Array(TOTAL).fill(200));
    // Every warm question is a memory hit whatever Redis does.
    expect(figures.fault.hits).toBeGreaterThan(0);
    expect(samples.filter((s, i) => i % 2 === 0 && s.cached !== true)).toHaveLength(0);
    expect(probes.length).toBe(2);
    for (const p of probes) {
      expect(p).toMatchObject({ health: 200, ready: 200 });
    }
    expect(probes.some((p) => p.healthStatus === 'degraded' && p.cacheDown.includes('redis'))).toBe(true);

    // With the limit this high nothing is refused; counted in-process meanwhile.
    await redis.spawn();
    const reconnected = await expectReconnected();
    const health = await eventually(
      () => request(t.server).get('/health'),
      (res) => res.body.status === 'healthy',
      10_000,
    );
    expect(health.body.status).toBe('healthy');
    console.info(`redis SIGKILL under load: ${JSON.stringify({ ...figures, probes, reconnected })}`);
  }, 60_000);

  it('SIGSTOP mid-load then SIGCONT: every response 200, probes 200, writes reach Redis again after the thaw', async () => {
    const { samples, probes } = await loadWith({
      faultAt: 100,
      fault: () => redis.freeze(),
      healAt: 200,
      heal: () => redis.thaw(),
    });
    const figures = summarize(samples);
    expect(samples.map((s) => s.status)).toEqual(Array(TOTAL).fill(200));
    expect(samples.filter((s, i) => i % 2 === 0 && s.cached !== true)).toHaveLength(0);
    expect(figures.fault.requests).toBeGreaterThan(50);
    for (const p of probes) expect(p).toMatchObject({ health: 200, ready: 200 });
    expect(probes.some((p) => p.healthStatus === 'degraded' && p.cacheDown.includes('redis'))).toBe(true);
    const reconnected = await expectReconnected();
    console.info(`redis SIGSTOP under load: ${JSON.stringify({ ...figures, probes, reconnected })}`);
  }, 60_000);
});

describe('rate limiting while Redis is down', () => {
  it('falls back to in-process counters that still limit: RATE_LIMIT=5 → 5 × 200, 3 × 429', async () => {
    const redis = await RedisServerProcess.start();
    const t = await createTestApp({ REDIS_URL: redis.url, RATE_LIMIT: '5', REDIS_COMMAND_TIMEOUT_MS: '100' });
    try {
      await redis.kill();
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) {
        statuses.push((await request(t.server).post('/predict').send({ question: uniqueQuestion() })).status);
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    } finally {
      await t.close();
      await redis.kill();
    }
  });
});
