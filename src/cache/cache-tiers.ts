import { Logger } from '@nestjs/common';
import { KeyvCacheableMemory } from 'cacheable';
import { Keyv } from 'keyv';
import type { CacheConfig } from '../config/cache.config';
import type { CacheLogger, TierHealth, TierSize } from './cache.types';
import { DiskLMStore, KeyvDiskStore } from './stores/disk-lm.store';
import { RedisLMStore } from './stores/redis-lm.store';
import type { CacheTier } from './tiered-lm-cache';

/**
 * A Keyv over an adapter that throws (so the tiered cache can count failures) with keys used as given: DSPy's
 * sha256 key, prefixed only where the store is shared (Redis).
 */
function keyvOver(store: ConstructorParameters<typeof Keyv>[0], ttlMs: number | undefined): Keyv {
  return new Keyv(store, {
    namespace: undefined,
    useKeyPrefix: false,
    throwOnErrors: true,
    ttl: ttlMs || undefined,
  });
}

/**
 * The memory tier: cacheable's LRU bounded by entry count (DSPy's `cachetools.LRUCache`), holding objects. It hands
 * out its objects without cloning: the tiered cache already copies every value in and out.
 */
export function memoryTier(options: { maxEntries: number; ttlMs?: number }): CacheTier {
  const adapter = new KeyvCacheableMemory({
    lruSize: options.maxEntries,
    useClone: false,
    stats: true,
    // One shard: the keys are sha256 already, and hashing each one to pick a shard costs more than it saves.
    storeHashSize: 1,
  });
  const keyv = keyvOver(adapter, options.ttlMs);
  // In-process: no JSON round trip (the tiered cache copies values in and out itself).
  keyv.serialize = undefined;
  keyv.deserialize = undefined;
  return {
    name: 'memory',
    keyv,
    size(): TierSize {
      const store = adapter.store;
      // Bytes are cacheable's rough estimate of the heap the keys and values take.
      return { entries: store.size, bytes: store.stats.vsize + store.stats.ksize };
    },
    health: (): TierHealth => ({ status: 'up' }),
    close: async () => adapter.clear(),
  };
}

/** The disk tier over a {@link DiskLMStore}; Keyv stores compact JSON strings in it. */
export function diskTier(disk: DiskLMStore, options: { ttlMs?: number } = {}): CacheTier {
  const keyv = keyvOver(new KeyvDiskStore(disk), options.ttlMs);
  return {
    name: 'disk',
    keyv,
    size(): TierSize {
      if (!disk.isOpen) return { entries: null, bytes: null };
      const { entries, bytes } = disk.stats();
      return { entries, bytes };
    },
    health(): TierHealth {
      const health = disk.health();
      if (health.status !== 'up') return health;
      const stats = disk.stats();
      return { ...health, maxBytes: stats.maxBytes, fileBytes: stats.fileBytes };
    },
    close: async () => disk.close(),
  };
}

/** The Redis tier over a {@link RedisLMStore}; every operation is bounded by the command timeout. */
export function redisTier(redis: RedisLMStore, options: { ttlMs?: number } = {}): CacheTier {
  const keyv = keyvOver(redis, options.ttlMs);
  return {
    name: 'redis',
    keyv,
    // The store bounds each Redis command; this outer bound only adds Keyv's own work and a little slack.
    timeoutMs: redis.commandTimeoutMs + 25,
    size: () => redis.size(),
    health: () => redis.health(),
    ready: () => redis.waitUntilReady(redis.connectTimeoutMs),
    close: () => redis.close(),
  };
}

/** The enabled tiers, fastest first, as configured. An empty list means caching is off. */
export function createCacheTiers(
  config: CacheConfig,
  logger: CacheLogger = new Logger('LmCache'),
): CacheTier[] {
  const tiers: CacheTier[] = [];
  const ttlMs = config.ttlMs > 0 ? config.ttlMs : undefined;
  if (config.memoryEnabled) tiers.push(memoryTier({ maxEntries: config.memoryEntries, ttlMs }));
  if (config.diskEnabled) {
    tiers.push(
      diskTier(new DiskLMStore({ dir: config.dir, maxBytes: config.diskSizeBytes, ttlMs, logger }), {
        ttlMs,
      }),
    );
  }
  if (config.redisUrl) {
    const redis = new RedisLMStore({
      url: config.redisUrl,
      connectTimeoutMs: config.redisConnectTimeoutMs,
      commandTimeoutMs: config.redisCommandTimeoutMs,
      logger,
    });
    tiers.push(redisTier(redis, { ttlMs }));
  }
  return tiers;
}
