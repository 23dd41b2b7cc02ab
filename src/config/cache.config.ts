import { isAbsolute, resolve } from 'node:path';
import { registerAs } from '@nestjs/config';
import { ConfigError, readEnv } from './env';

/**
 * The LM response cache: the seed's variable names for the memory and disk tiers, plus the cache directory, a TTL
 * and the optional shared Redis tier.
 */
export const cacheConfig = registerAs('cache', () => {
  const env = readEnv('cache');
  const dir = env.string('CACHE_DIR', '.cache/dspy');
  const redisUrl = env.optionalString('REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\/[^/]/.test(redisUrl)) {
    throw new ConfigError(
      `Invalid configuration (cache): REDIS_URL must be a redis:// or rediss:// URL (got ${JSON.stringify(
        redisUrl.replace(/\/\/[^@/]*@/, '//***@'),
      )})`,
    );
  }
  return {
    memoryEnabled: env.bool('CACHE_MEMORY_ENABLED', true),
    // The seed allows 2,000,000 entries: with answers of a few KB that is gigabytes of heap and, in practice, a
    // memory tier that grows until the process is killed. 10,000 recent answers cover a hot set; the disk and
    // Redis tiers hold the long tail.
    memoryEntries: env.int('CACHE_MEMORY_ENTRIES', 10_000, { min: 1, max: 16_000_000 }),
    diskEnabled: env.bool('CACHE_DISK_ENABLED', true),
    /** Bytes of cached keys and values the disk tier may hold (the seed's default, 5 GB). */
    diskSizeBytes: env.int('CACHE_DISK_SIZE', 5_000_000_000, { min: 1024 }),
    /** Where the SQLite file lives; relative paths are resolved against the working directory. */
    dir: isAbsolute(dir) ? dir : resolve(process.cwd(), dir),
    /** Time to live of an entry in every tier, in ms; 0 keeps entries until they are evicted. */
    ttlMs: env.int('CACHE_TTL_MS', 0, { min: 0 }),
    /** Unset: no Redis tier. */
    redisUrl,
    redisConnectTimeoutMs: env.int('REDIS_CONNECT_TIMEOUT_MS', 500, { min: 10, max: 60_000 }),
    /** The longest any request waits for Redis, per command; a frozen Redis costs at most this. */
    redisCommandTimeoutMs: env.int('REDIS_COMMAND_TIMEOUT_MS', 100, { min: 5, max: 10_000 }),
  };
});

export type CacheConfig = ReturnType<typeof cacheConfig>;
