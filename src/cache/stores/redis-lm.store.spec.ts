import { randomUUID } from 'node:crypto';
import { createClient } from '@keyv/redis';
import type { CacheLogger } from '../cache.types';
import { RedisServerProcess } from '../testing/redis-server';
import { CacheTimeoutError } from '../with-timeout';
import { RedisLMStore, RedisUnavailableError, type RedisLMStoreOptions } from './redis-lm.store';

const COMMAND_TIMEOUT_MS = 100;
/** Generous guard for a loaded CI machine; the point is "bounded", not "fast". */
const MARGIN_MS = 150;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

/** How long an operation took to settle, and how it settled. */
async function timed<T>(op: () => Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const started = performance.now();
  try {
    const value = await op();
    return { ms: performance.now() - started, value };
  } catch (error: unknown) {
    return { ms: performance.now() - started, error };
  }
}

/** Plain mock functions (not methods), so assertions can pass them around. */
type MockLogger = { [K in keyof CacheLogger]: jest.Mock };
const quietLogger = (): MockLogger => ({ log: jest.fn(), warn: jest.fn(), error: jest.fn() });

describe('RedisLMStore', () => {
  let server: RedisServerProcess;
  const stores: RedisLMStore[] = [];
  const make = (options: Partial<RedisLMStoreOptions> = {}) => {
    const store = new RedisLMStore({
      url: server.url,
      namespace: `test-${randomUUID()}:lm`,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
      connectTimeoutMs: 200,
      maxReconnectDelayMs: 200,
      logger: quietLogger(),
      ...options,
    });
    stores.push(store);
    return store;
  };
  const ready = async (options: Partial<RedisLMStoreOptions> = {}) => {
    const store = make(options);
    await waitFor(() => store.isReady, 3000);
    return store;
  };

  beforeAll(async () => {
    server = await RedisServerProcess.start();
  });

  afterEach(async () => {
    server.thaw();
    await Promise.all(stores.splice(0).map((s) => s.close()));
    if (!server.pid) await server.spawn();
  });

  afterAll(async () => {
    await server.kill();
  });

  async function rawClient() {
    const client = createClient({ url: server.url });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }

  it('stores under `<namespace>:<key>` and honours the TTL', async () => {
    const store = await ready({ namespace: 'dspy-test:lm' });
    const key = randomUUID();
    await store.set(key, '{"value":1}');
    await store.set(`${key}-ttl`, '{"value":2}', 200);
    expect(await store.get(key)).toBe('{"value":1}');
    const raw = await rawClient();
    try {
      expect(await raw.get(`dspy-test:lm:${key}`)).toBe('{"value":1}');
      expect(await raw.pTTL(`dspy-test:lm:${key}`)).toBe(-1);
      const pttl = await raw.pTTL(`dspy-test:lm:${key}-ttl`);
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(200);
      await sleep(300);
      expect(await store.get(`${key}-ttl`)).toBeUndefined();
      expect(await raw.exists(`dspy-test:lm:${key}-ttl`)).toBe(0);
    } finally {
      raw.destroy();
    }
  });

  it('clears its own namespace only and measures its size', async () => {
    const a = await ready();
    const b = await ready();
    await a.set('k1', 'x'.repeat(100));
    await a.set('k2', 'y'.repeat(300));
    await b.set('k1', 'z');
    const size = await a.measureSize();
    expect(size.entries).toBe(2);
    expect(size.bytes).toBeGreaterThanOrEqual(400);
    await a.clear();
    expect(await a.get('k1')).toBeUndefined();
    expect(await b.get('k1')).toBe('z');
  });

  it('fails fast, never hangs, when Redis is not there at all', async () => {
    const dead = await RedisServerProcess.start();
    await dead.kill();
    const store = make({ url: dead.url });
    for (let i = 0; i < 5; i++) {
      const get = await timed(() => store.get('k'));
      expect(get.error).toBeInstanceOf(RedisUnavailableError);
      expect(get.ms).toBeLessThan(COMMAND_TIMEOUT_MS + MARGIN_MS);
      const set = await timed(() => store.set('k', 'v'));
      expect(set.error).toBeInstanceOf(RedisUnavailableError);
      expect(set.ms).toBeLessThan(COMMAND_TIMEOUT_MS + MARGIN_MS);
    }
    expect(await store.health()).toMatchObject({ status: 'down', connected: false });
    const close = await timed(() => store.close());
    expect(close.ms).toBeLessThan(COMMAND_TIMEOUT_MS + MARGIN_MS);
  });

  it('answers within the command timeout after a SIGKILL and reconnects by itself', async () => {
    const store = await ready();
    await store.set('before', 'v1');
    await server.kill();
    let worst = 0;
    for (let i = 0; i < 20; i++) {
      const get = await timed(() => store.get('before'));
      const set = await timed(() => store.set(`k${i}`, 'v'));
      expect(get.error).toBeDefined();
      expect(set.error).toBeDefined();
      worst = Math.max(worst, get.ms, set.ms);
    }
    expect(worst).toBeLessThan(COMMAND_TIMEOUT_MS + MARGIN_MS);
    expect(await store.health()).toMatchObject({ status: 'down' });
    await server.spawn(); // same port, empty data (no persistence)
    await waitFor(() => store.isReady, 5000);
    await store.set('after', 'v2');
    expect(await store.get('after')).toBe('v2');
    expect(await store.health()).toMatchObject({ status: 'up', connected: true });
    console.info(
      `Redis SIGKILL: worst get/set ${worst.toFixed(1)} ms (command timeout ${COMMAND_TIMEOUT_MS} ms)`,
    );
  });

  it('bounds every command while Redis is frozen (SIGSTOP), sequential and concurrent, then recovers', async () => {
    const logger = quietLogger();
    const store = await ready({ logger });
    await store.set('kept', 'value');
    server.freeze();
    let worst = 0;
    const errors: unknown[] = [];
    for (let i = 0; i < 6; i++) {
      const get = await timed(() => store.get('kept'));
      const set = await timed(() => store.set(`k${i}`, 'v'));
      errors.push(get.error, set.error);
      worst = Math.max(worst, get.ms, set.ms);
    }
    const burst = await Promise.all(
      Array.from({ length: 100 }, (_, i) => timed(() => store.get(`burst${i}`))),
    );
    for (const r of burst) {
      expect(r.error).toBeDefined();
      worst = Math.max(worst, r.ms);
    }
    expect(worst).toBeLessThan(COMMAND_TIMEOUT_MS + MARGIN_MS);
    // The first ones time out; after three in a row the connection is recycled and the rest fail at once.
    expect(errors.slice(0, 3).every((e) => e instanceof CacheTimeoutError)).toBe(true);
    expect(errors.slice(3).every((e) => e instanceof RedisUnavailableError)).toBe(true);
    expect(logger.warn).toHaveBeenCalledWith(expect.stringContaining('stopped answering'));
    expect(store.isReady).toBe(false);
    server.thaw();
    await waitFor(() => store.isReady, 5000);
    expect(await store.get('kept')).toBe('value');
    console.info(
      `Redis SIGSTOP: worst get/set ${worst.toFixed(1)} ms (command timeout ${COMMAND_TIMEOUT_MS} ms)`,
    );
  });

  it('closes within the command timeout while Redis is frozen', async () => {
    const store = await ready();
    await store.set('k', 'v');
    server.freeze();
    const pending = store.get('k').catch((e: unknown) => e);
    const close = await timed(() => store.close());
    expect(close.error).toBeUndefined();
    expect(close.ms).toBeLessThan(COMMAND_TIMEOUT_MS + MARGIN_MS);
    expect(await pending).toBeInstanceOf(Error);
    await expect(store.get('k')).rejects.toThrow(RedisUnavailableError);
    expect(await store.health()).toMatchObject({ status: 'down', error: 'closed' });
  });
});
