import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keyv } from 'keyv';
import type { CachedCompletion } from '../dspy';
import { diskTier, memoryTier, redisTier } from './cache-tiers';
import type { CacheLogger, CacheResult, CacheTierName } from './cache.types';
import { DiskLMStore } from './stores/disk-lm.store';
import { RedisLMStore } from './stores/redis-lm.store';
import { RedisServerProcess } from './testing/redis-server';
import { type CacheTier, TieredLMCache } from './tiered-lm-cache';

const COMMAND_TIMEOUT_MS = 100;
/** Generous guard: the assertion is "bounded by the command timeout", not a speed benchmark. */
const MARGIN_MS = 150;
const SHARED_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

async function timed<T>(op: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await op();
  return { ms: performance.now() - started, value };
}

/** Plain mock functions (not methods), so assertions can pass them around. */
type MockLogger = { [K in keyof CacheLogger]: jest.Mock };
const quietLogger = (): MockLogger => ({ log: jest.fn(), warn: jest.fn(), error: jest.fn() });

const completion = (text: string): CachedCompletion => ({
  outputs: [text],
  usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
  responseModel: 'gpt-4o-mini-2024-07-18',
  finishReasons: ['stop'],
});

/** A tier whose store fails in a chosen way, for the "sick tier" cases. */
function sickTier(name: CacheTierName, behaviour: 'throw' | 'hang', timeoutMs?: number): CacheTier {
  const fail = () =>
    behaviour === 'throw'
      ? Promise.reject(new Error(`${name} is broken`))
      : new Promise<never>(() => undefined);
  const store = new Map<string, unknown>();
  const keyv = new Keyv(store, { throwOnErrors: true });
  keyv.get = fail;
  keyv.set = fail;
  return {
    name,
    keyv,
    timeoutMs,
    size: () => ({ entries: null, bytes: null }),
    health: () =>
      behaviour === 'throw' ? { status: 'down', error: 'broken' } : new Promise(() => undefined),
    close: async () => undefined,
  };
}

describe('TieredLMCache', () => {
  let dir: string;
  const closeables: { close(): unknown }[] = [];
  const disk = (name = 'a', options: { maxBytes?: number } = {}) => {
    const store = new DiskLMStore({
      dir: join(dir, name),
      maxBytes: options.maxBytes ?? 10_000_000,
      logger: quietLogger(),
    });
    closeables.push(store);
    return store;
  };
  const redis = (url: string, namespace: string) => {
    const store = new RedisLMStore({
      url,
      namespace,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
      connectTimeoutMs: 200,
      maxReconnectDelayMs: 200,
      logger: quietLogger(),
    });
    closeables.push(store);
    return store;
  };
  const cache = (tiers: CacheTier[], options: ConstructorParameters<typeof TieredLMCache>[1] = {}) => {
    const c = new TieredLMCache(tiers, { logger: quietLogger(), ...options });
    closeables.push(c);
    return c;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tiered-lm-cache-'));
  });

  afterEach(async () => {
    for (const c of closeables.splice(0).reverse()) await c.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes through every tier and promotes a lower hit into every tier above', async () => {
    const store = disk();
    const writer = cache([memoryTier({ maxEntries: 100 }), diskTier(store)]);
    await writer.put('k', completion('hello'));
    expect(await writer.tiers[0].keyv.get('k')).toEqual(completion('hello'));
    expect(JSON.parse(store.get('k')!)).toMatchObject({ value: completion('hello') });

    // A new process: empty memory, same disk.
    const results: [CacheTierName, CacheResult][] = [];
    const memory = memoryTier({ maxEntries: 100 });
    const reader = cache([memory, diskTier(store)], {
      onResult: (tier, result) => results.push([tier, result]),
    });
    expect(await reader.get('k')).toEqual(completion('hello'));
    expect(results).toEqual([
      ['memory', 'miss'],
      ['disk', 'hit'],
    ]);
    expect(await memory.keyv.get('k')).toEqual(completion('hello'));
    results.length = 0;
    expect(await reader.get('k')).toEqual(completion('hello'));
    expect(results).toEqual([['memory', 'hit']]);
    expect(await reader.get('absent')).toBeUndefined();
    const stats = reader.stats();
    expect(stats).toMatchObject({ hits: 2, misses: 1 });
    expect(stats.tiers[0]).toMatchObject({
      tier: 'memory',
      hits: 1,
      misses: 2,
      errors: 0,
      writes: 1,
      entries: 1,
    });
    expect(stats.tiers[1]).toMatchObject({ tier: 'disk', hits: 1, misses: 1, errors: 0, entries: 1 });
    expect(stats.tiers[0].bytes).toBeGreaterThan(0);
    expect(stats.tiers[1].bytes).toBeGreaterThan(0);
  });

  it('copies on put and hands out frozen answers: a caller cannot change the cache', async () => {
    const c = cache([memoryTier({ maxEntries: 10 })]);
    const value = completion('original');
    await c.put('k', value);
    value.outputs[0] = 'changed by the caller after put';
    const hit = await c.get('k');
    expect(() => {
      hit!.outputs[0] = 'changed by the caller after get';
    }).toThrow(TypeError);
    expect(() => {
      (hit!.usage as Record<string, unknown>).total_tokens = 0;
    }).toThrow(TypeError);
    expect(await c.get('k')).toEqual(completion('original'));
  });

  it('bounds the memory tier by entries, least recently used first', async () => {
    const memory = memoryTier({ maxEntries: 3 });
    const c = cache([memory]);
    await c.put('a', completion('a'));
    await c.put('b', completion('b'));
    await c.put('c', completion('c'));
    expect(await c.get('a')).toBeDefined(); // a becomes most recent
    await c.put('d', completion('d'));
    await c.put('e', completion('e'));
    expect(memory.size().entries).toBe(3);
    expect(await c.get('b')).toBeUndefined();
    expect(await c.get('c')).toBeUndefined();
    expect(await c.get('a')).toEqual(completion('a'));
    expect(await c.get('e')).toEqual(completion('e'));
    for (let i = 0; i < 1000; i++) await c.put(`bulk-${i}`, completion(String(i)));
    expect(memory.size().entries).toBe(3);
  });

  it('keeps the disk tier within its byte budget through the tiered writes', async () => {
    const budget = 128 * 1024;
    const store = disk('bounded', { maxBytes: budget });
    const c = cache([memoryTier({ maxEntries: 10 }), diskTier(store)]);
    let written = 0;
    for (let i = 0; written < 3 * budget; i++) {
      const value = completion('z'.repeat(500 + (i % 7) * 300));
      await c.put(`key-${i}`, value);
      written += JSON.stringify(value).length;
      expect(store.stats().bytes).toBeLessThanOrEqual(budget);
    }
    expect(c.stats().tiers[1].writeErrors).toBe(0);
  });

  it('expires entries in every tier after the TTL', async () => {
    const c = cache([memoryTier({ maxEntries: 10 }), diskTier(disk())], { ttlMs: 80 });
    await c.put('k', completion('short-lived'));
    expect(await c.get('k')).toBeDefined();
    await sleep(130);
    expect(await c.get('k')).toBeUndefined();
    expect(c.stats().tiers.map((t) => t.misses)).toEqual([1, 1]);
  });

  it('promotes with the remaining TTL, not a fresh one', async () => {
    const store = disk();
    await cache([diskTier(store)], { ttlMs: 150 }).put('k', completion('v'));
    await sleep(100);
    const memory = memoryTier({ maxEntries: 10 });
    const c = cache([memory, diskTier(store)], { ttlMs: 150 });
    expect(await c.get('k')).toBeDefined(); // promoted with ~50 ms left
    expect(await memory.keyv.get('k')).toBeDefined();
    await sleep(80);
    expect(await memory.keyv.get('k')).toBeUndefined();
  });

  it('treats a throwing tier as a miss and a dropped write, logging at most once per interval', async () => {
    const logger = quietLogger();
    const results: string[] = [];
    const c = cache([sickTier('memory', 'throw'), diskTier(disk())], {
      logger,
      onResult: (tier, result) => results.push(`${tier}:${result}`),
    });
    for (let i = 0; i < 20; i++) await c.put(`k${i}`, completion(String(i)));
    for (let i = 0; i < 20; i++) expect(await c.get(`k${i}`)).toEqual(completion(String(i)));
    expect(results.slice(0, 2)).toEqual(['memory:error', 'disk:hit']);
    expect(c.stats().tiers[0]).toMatchObject({ errors: 20, writeErrors: 40, hits: 0 });
    expect(c.stats().tiers[1]).toMatchObject({ hits: 20, writes: 20 });
    // One line for failed reads, one for failed writes, instead of 60.
    expect(logger.warn).toHaveBeenCalledTimes(2);
  });

  it('bounds a tier that never answers by its timeout', async () => {
    const c = cache([memoryTier({ maxEntries: 10 }), sickTier('redis', 'hang', 50)]);
    const get = await timed(() => c.get('absent'));
    const put = await timed(() => c.put('k', completion('v')));
    expect(get.value).toBeUndefined();
    expect(get.ms).toBeLessThan(50 + MARGIN_MS);
    expect(put.ms).toBeLessThan(50 + MARGIN_MS);
    expect(await c.get('k')).toEqual(completion('v')); // served from memory
    expect(c.stats().tiers[1]).toMatchObject({ errors: 1, writeErrors: 1 });
    const health = await timed(() => c.health());
    expect(health.value.redis).toMatchObject({ status: 'down' });
    expect(health.ms).toBeLessThan(50 + MARGIN_MS);
  });

  it('isolates a throwing result listener', async () => {
    const c = cache([memoryTier({ maxEntries: 10 })], {
      onResult: () => {
        throw new Error('metrics are broken');
      },
    });
    await c.put('k', completion('v'));
    expect(await c.get('k')).toEqual(completion('v'));
  });

  it('does not serve a value of the wrong shape', async () => {
    const memory = memoryTier({ maxEntries: 10 });
    const c = cache([memory]);
    await memory.keyv.set('k', { outputs: 'not a list' });
    expect(await c.get('k')).toBeUndefined();
    expect(c.stats().tiers[0].errors).toBe(1);
  });

  describe('with the shared Redis', () => {
    it('lets two instances (two replicas) hit each other through Redis, and promotes the hit locally', async () => {
      const namespace = `test-${randomUUID()}:lm`;
      const redisA = redis(SHARED_REDIS_URL, namespace);
      const redisB = redis(SHARED_REDIS_URL, namespace);
      await waitFor(() => redisA.isReady && redisB.isReady, 3000);
      try {
        const a = cache([memoryTier({ maxEntries: 10 }), diskTier(disk('a')), redisTier(redisA)]);
        const memoryB = memoryTier({ maxEntries: 10 });
        const diskB = disk('b');
        const b = cache([memoryB, diskTier(diskB), redisTier(redisB)]);
        await a.put('shared', completion('from A'));
        expect(await b.get('shared')).toEqual(completion('from A'));
        expect(b.stats().tiers.map((t) => [t.tier, t.hits, t.misses])).toEqual([
          ['memory', 0, 1],
          ['disk', 0, 1],
          ['redis', 1, 0],
        ]);
        expect(await memoryB.keyv.get('shared')).toEqual(completion('from A'));
        expect(diskB.get('shared')).toBeDefined();
      } finally {
        await redisA.clear();
      }
    });

    it('keeps TTLs in Redis', async () => {
      const namespace = `test-${randomUUID()}:lm`;
      const store = redis(SHARED_REDIS_URL, namespace);
      await waitFor(() => store.isReady, 3000);
      const c = cache([redisTier(store)], { ttlMs: 100 });
      await c.put('k', completion('v'));
      expect(await c.get('k')).toBeDefined();
      await sleep(150);
      expect(await c.get('k')).toBeUndefined();
    });
  });

  describe('with a Redis that dies or freezes mid-run', () => {
    let server: RedisServerProcess;

    beforeEach(async () => {
      server = await RedisServerProcess.start();
    });

    afterEach(async () => {
      await server.kill();
    });

    async function threeTiers() {
      const store = redis(server.url, 'dspy:lm');
      await waitFor(() => store.isReady, 3000);
      const c = cache([memoryTier({ maxEntries: 1000 }), diskTier(disk()), redisTier(store)]);
      for (let i = 0; i < 10; i++) await c.put(`warm-${i}`, completion(`warm ${i}`));
      expect(c.stats().tiers[2].writes).toBe(10);
      return { store, c };
    }

    /** Reads that must reach Redis (cold keys), writes, and reads local tiers must serve; returns the worst latency. */
    async function exercise(c: TieredLMCache, round: string): Promise<number> {
      let worst = 0;
      for (let i = 0; i < 10; i++) {
        const miss = await timed(() => c.get(`${round}-cold-${i}`));
        expect(miss.value).toBeUndefined();
        const put = await timed(() => c.put(`${round}-new-${i}`, completion(`new ${i}`)));
        const warm = await timed(() => c.get(`warm-${i}`));
        expect(warm.value).toEqual(completion(`warm ${i}`));
        worst = Math.max(worst, miss.ms, put.ms, warm.ms);
      }
      const burst = await Promise.all(
        Array.from({ length: 50 }, (_, i) => timed(() => c.get(`${round}-burst-${i}`))),
      );
      for (const r of burst) worst = Math.max(worst, r.ms);
      // Fresh writes still land in the local tiers.
      expect(await c.get(`${round}-new-3`)).toEqual(completion('new 3'));
      return worst;
    }

    it('keeps serving from memory and disk within the command timeout after a SIGKILL', async () => {
      const { store, c } = await threeTiers();
      await server.kill();
      const worst = await exercise(c, 'killed');
      expect(worst).toBeLessThan(COMMAND_TIMEOUT_MS + MARGIN_MS);
      expect(c.stats().tiers[2].errors).toBeGreaterThan(0);
      expect((await c.health()).redis).toMatchObject({ status: 'down' });
      await server.spawn();
      await waitFor(() => store.isReady, 5000);
      await c.put('after-restart', completion('back'));
      expect(await store.get('after-restart')).toBeDefined();
      expect((await c.health()).redis).toMatchObject({ status: 'up' });
      console.info(`Tiered cache, Redis SIGKILL: worst get/put ${worst.toFixed(1)} ms`);
    });

    it('keeps serving within the command timeout while Redis is frozen, and closes promptly', async () => {
      const { store, c } = await threeTiers();
      server.freeze();
      const worst = await exercise(c, 'frozen');
      expect(worst).toBeLessThan(COMMAND_TIMEOUT_MS + MARGIN_MS);
      expect(c.stats().tiers[2].errors + c.stats().tiers[2].writeErrors).toBeGreaterThan(0);
      const health = await timed(() => c.health());
      expect(health.value.redis).toMatchObject({ status: 'down' });
      expect(health.ms).toBeLessThan(COMMAND_TIMEOUT_MS + MARGIN_MS);
      const close = await timed(() => c.close());
      expect(close.ms).toBeLessThan(COMMAND_TIMEOUT_MS + MARGIN_MS);
      expect(store.isReady).toBe(false);
      console.info(
        `Tiered cache, Redis SIGSTOP: worst get/put ${worst.toFixed(1)} ms; close ${close.ms.toFixed(1)} ms`,
      );
    });

    it('uses Redis again once it thaws', async () => {
      const { store, c } = await threeTiers();
      server.freeze();
      await exercise(c, 'frozen');
      server.thaw();
      await waitFor(() => store.isReady, 5000);
      await c.put('thawed', completion('v'));
      expect(await store.get('thawed')).toBeDefined();
      expect(await store.get('warm-1')).toBeDefined(); // written before the freeze, still there
    });
  });
});
