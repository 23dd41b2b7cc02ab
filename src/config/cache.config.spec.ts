import { resolve } from 'node:path';
import { cacheConfig } from './cache.config';
import { ConfigError } from './env';

describe('cacheConfig', () => {
  const NAMES = [
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
  const saved = { ...process.env };

  beforeEach(() => {
    for (const name of NAMES) delete process.env[name];
  });

  afterAll(() => {
    process.env = saved;
  });

  it('defaults to bounded memory, a 5 GB disk tier under ./.cache/dspy, no TTL and no Redis', () => {
    expect(cacheConfig()).toEqual({
      memoryEnabled: true,
      memoryEntries: 10_000,
      diskEnabled: true,
      diskSizeBytes: 5_000_000_000,
      dir: resolve(process.cwd(), '.cache/dspy'),
      ttlMs: 0,
      redisUrl: undefined,
      redisConnectTimeoutMs: 500,
      redisCommandTimeoutMs: 100,
    });
  });

  it('reads the seed names and the Redis settings', () => {
    Object.assign(process.env, {
      CACHE_MEMORY_ENABLED: 'false',
      CACHE_MEMORY_ENTRIES: '500',
      CACHE_DISK_ENABLED: '0',
      CACHE_DISK_SIZE: '1048576',
      CACHE_DIR: '/var/cache/dspy',
      CACHE_TTL_MS: '60000',
      REDIS_URL: 'redis://:secret@redis:6379/2',
      REDIS_CONNECT_TIMEOUT_MS: '250',
      REDIS_COMMAND_TIMEOUT_MS: '50',
    });
    expect(cacheConfig()).toEqual({
      memoryEnabled: false,
      memoryEntries: 500,
      diskEnabled: false,
      diskSizeBytes: 1_048_576,
      dir: '/var/cache/dspy',
      ttlMs: 60_000,
      redisUrl: 'redis://:secret@redis:6379/2',
      redisConnectTimeoutMs: 250,
      redisCommandTimeoutMs: 50,
    });
  });

  it.each([
    ['CACHE_MEMORY_ENTRIES', '0'],
    ['CACHE_DISK_SIZE', '5e9'],
    ['CACHE_TTL_MS', '-1'],
    ['CACHE_DISK_ENABLED', 'maybe'],
    ['REDIS_COMMAND_TIMEOUT_MS', '0'],
  ])('rejects %s=%s naming the variable', (name, value) => {
    process.env[name] = value;
    expect(() => cacheConfig()).toThrow(ConfigError);
    expect(() => cacheConfig()).toThrow(name);
  });

  it('rejects a REDIS_URL that is not redis:// without echoing its password', () => {
    process.env.REDIS_URL = 'http://user:hunter2@redis:6379';
    expect(() => cacheConfig()).toThrow(/REDIS_URL/);
    expect(() => cacheConfig()).not.toThrow(/hunter2/);
  });
});
