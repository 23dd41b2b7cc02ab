import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CACHE_MANAGER } from '@nestjs/cache-manager';
import { ConfigModule } from '@nestjs/config';
import { Test, type TestingModule } from '@nestjs/testing';
import type { Cache } from 'cache-manager';
import { cacheKey, LM, type LMProvider, type LMRequest, type LMStreamChunk } from '../dspy';
import { LM_CACHE } from './cache.constants';
import { CacheHealthIndicator } from './cache.health';
import { LmCacheModule } from './cache.module';
import { RedisServerProcess } from './testing/redis-server';
import { TieredLMCache } from './tiered-lm-cache';

const SHARED_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const CACHE_ENV = [
  'CACHE_MEMORY_ENABLED',
  'CACHE_MEMORY_ENTRIES',
  'CACHE_DISK_ENABLED',
  'CACHE_DISK_SIZE',
  'CACHE_DIR',
  'CACHE_TTL_MS',
  'REDIS_URL',
  'REDIS_CONNECT_TIMEOUT_MS',
  'REDIS_COMMAND_TIMEOUT_MS',
];

class CountingProvider implements LMProvider {
  calls = 0;
  async complete(_request: LMRequest) {
    this.calls += 1;
    return {
      outputs: ['[[ ## answer ## ]]\n42\n\n[[ ## completed ## ]]'],
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
      responseModel: 'm',
      finishReasons: ['stop'],
    };
  }
  // eslint-disable-next-line require-yield
  async *stream(): AsyncIterable<LMStreamChunk> {
    throw new Error('not used');
  }
}

describe('LmCacheModule', () => {
  let dir: string;
  const saved: Record<string, string | undefined> = {};
  const modules: TestingModule[] = [];

  const boot = async (env: Record<string, string>) => {
    for (const name of CACHE_ENV) delete process.env[name];
    Object.assign(process.env, { CACHE_DIR: dir, ...env });
    const moduleRef = await Test.createTestingModule({
      imports: [ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true }), LmCacheModule],
    }).compile();
    await moduleRef.init();
    modules.push(moduleRef);
    return moduleRef;
  };

  beforeAll(() => {
    for (const name of CACHE_ENV) saved[name] = process.env[name];
  });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lm-cache-module-'));
  });

  afterEach(async () => {
    for (const m of modules.splice(0)) await m.close();
    rmSync(dir, { recursive: true, force: true });
  });

  afterAll(() => {
    for (const name of CACHE_ENV) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  });

  it('provides the tiered cache over the same Keyv stores cache-manager holds', async () => {
    const moduleRef = await boot({ REDIS_URL: SHARED_REDIS_URL });
    const cache = moduleRef.get<TieredLMCache>(LM_CACHE);
    expect(cache).toBeInstanceOf(TieredLMCache);
    expect(cache.tiers.map((t) => t.name)).toEqual(['memory', 'disk', 'redis']);
    const manager = moduleRef.get<Cache>(CACHE_MANAGER);
    expect(manager.stores).toHaveLength(3);
    manager.stores.forEach((store, i) => expect(store).toBe(cache.tiers[i].keyv));
    expect(existsSync(join(dir, 'lm-cache.sqlite'))).toBe(true);

    const key = `test-${randomUUID()}`;
    const value = { outputs: ['hi'], usage: {}, responseModel: null, finishReasons: ['stop'] };
    try {
      await cache.put(key, value);
      expect(await manager.get(key)).toEqual(value);
    } finally {
      // Only this test's key: the shared Redis may hold other suites' entries under the same namespace.
      await cache.tiers[2].keyv.delete(key);
    }
  });

  it('reports every tier, entries and bytes in the health indicator', async () => {
    const moduleRef = await boot({ REDIS_URL: SHARED_REDIS_URL });
    const cache = moduleRef.get<TieredLMCache>(LM_CACHE);
    const key = `test-${randomUUID()}`;
    await cache.put(key, { outputs: ['x'], usage: {}, responseModel: null, finishReasons: [] });
    const result = await moduleRef.get(CacheHealthIndicator).isHealthy();
    await cache.tiers[2].keyv.delete(key);
    expect(result.cache).toMatchObject({
      status: 'up',
      enabled: true,
      tiers: {
        memory: { status: 'up', entries: 1 },
        disk: { status: 'up', entries: 1 },
        redis: { status: 'up', connected: true },
      },
    });
    const tiers = (result.cache as unknown as { tiers: Record<string, { bytes: number }> }).tiers;
    expect(tiers.memory.bytes).toBeGreaterThan(0);
    expect(tiers.disk.bytes).toBeGreaterThan(0);
  });

  it('boots, serves and shuts down promptly with Redis unreachable; health says down, nothing throws', async () => {
    const dead = await RedisServerProcess.start();
    await dead.kill();
    const started = Date.now();
    const moduleRef = await boot({ REDIS_URL: dead.url, REDIS_COMMAND_TIMEOUT_MS: '100' });
    const cache = moduleRef.get<TieredLMCache>(LM_CACHE);
    await cache.put('k', { outputs: ['local'], usage: {}, responseModel: null, finishReasons: [] });
    expect(await cache.get('k')).toMatchObject({ outputs: ['local'] });
    const result = await moduleRef.get(CacheHealthIndicator).isHealthy();
    expect(result.cache).toMatchObject({
      status: 'down',
      down: ['redis'],
      tiers: { redis: { status: 'down' } },
    });
    await moduleRef.close();
    modules.pop();
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('closes with Redis frozen', async () => {
    const server = await RedisServerProcess.start();
    try {
      const moduleRef = await boot({ REDIS_URL: server.url, REDIS_COMMAND_TIMEOUT_MS: '100' });
      const cache = moduleRef.get<TieredLMCache>(LM_CACHE);
      await cache.put('k', { outputs: ['v'], usage: {}, responseModel: null, finishReasons: [] });
      server.freeze();
      const started = performance.now();
      await moduleRef.close();
      modules.pop();
      expect(performance.now() - started).toBeLessThan(500);
    } finally {
      await server.kill();
    }
  });

  it('provides null and a healthy "disabled" report when every tier is off', async () => {
    const moduleRef = await boot({ CACHE_MEMORY_ENABLED: 'false', CACHE_DISK_ENABLED: 'false' });
    expect(moduleRef.get(LM_CACHE)).toBeNull();
    expect(await moduleRef.get(CacheHealthIndicator).isHealthy()).toEqual({
      cache: { status: 'up', enabled: false },
    });
    const manager = moduleRef.get<Cache>(CACHE_MANAGER);
    await manager.set('k', 1);
    expect(await manager.get('k')).toBe(1);
    expect(existsSync(join(dir, 'lm-cache.sqlite'))).toBe(false);
  });

  it('lets the LM answer a repeated call from the cache, and a restarted process from disk', async () => {
    const messages = [{ role: 'user' as const, content: 'What is 6 x 7?' }];
    const provider = new CountingProvider();
    const first = await boot({});
    const lm = new LM('openai/test', { provider, cacheStore: first.get(LM_CACHE) });
    expect((await lm.call(messages)).cacheHit).toBe(false);
    const second = await lm.call(messages);
    expect(second).toMatchObject({ cacheHit: true, usage: {} });
    expect(provider.calls).toBe(1);
    const key = cacheKey(lm.cacheRequest(messages));
    expect(first.get<TieredLMCache>(LM_CACHE).stats().tiers[0].hits).toBe(1);
    await first.close();
    modules.pop();

    const restarted = await boot({});
    const cache = restarted.get<TieredLMCache>(LM_CACHE);
    const lm2 = new LM('openai/test', { provider, cacheStore: cache });
    expect(await lm2.call(messages)).toMatchObject({ cacheHit: true, outputs: second.outputs });
    expect(provider.calls).toBe(1);
    expect(cache.stats().tiers.map((t) => [t.tier, t.hits])).toEqual([
      ['memory', 0],
      ['disk', 1],
    ]);
    expect(await cache.tiers[0].keyv.get(key)).toBeDefined();
  });
});
