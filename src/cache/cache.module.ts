import { CacheModule } from '@nestjs/cache-manager';
import {
  Global,
  Inject,
  Injectable,
  Logger,
  Module,
  type OnApplicationShutdown,
  type OnModuleDestroy,
} from '@nestjs/common';
import { ConfigModule, type ConfigType } from '@nestjs/config';
import { TerminusModule } from '@nestjs/terminus';
import { KeyvCacheableMemory } from 'cacheable';
import { Keyv } from 'keyv';
import { cacheConfig } from '../config/cache.config';
import { LM_CACHE, LM_CACHE_TIERS } from './cache.constants';
import { CacheMetrics } from './cache-metrics';
import { CacheHealthIndicator } from './cache.health';
import { createCacheTiers } from './cache-tiers';
import { type CacheTier, TieredLMCache } from './tiered-lm-cache';

/** Builds the configured tiers once; both `LM_CACHE` and cache-manager's `CACHE_MANAGER` use these instances. */
@Module({
  imports: [ConfigModule.forFeature(cacheConfig)],
  providers: [
    {
      provide: LM_CACHE_TIERS,
      inject: [cacheConfig.KEY],
      useFactory: async (config: ConfigType<typeof cacheConfig>): Promise<CacheTier[]> => {
        const logger = new Logger('LmCache');
        const tiers = createCacheTiers(config, logger);
        // Start with the shared tier when it answers within its connect timeout; never wait longer than that.
        await Promise.all(tiers.map(async (t) => t.ready?.()));
        logger.log(
          tiers.length > 0
            ? `LM cache tiers: ${tiers.map((t) => t.name).join(' → ')}`
            : 'LM cache disabled (every tier is off)',
        );
        return tiers;
      },
    },
  ],
  exports: [LM_CACHE_TIERS],
})
class LmCacheTiersModule {}

/** Closes the tiers when the app shuts down: bounded even with Redis frozen. */
@Injectable()
class LmCacheShutdown implements OnModuleDestroy, OnApplicationShutdown {
  constructor(@Inject(LM_CACHE) private readonly cache: TieredLMCache | null) {}

  async onModuleDestroy(): Promise<void> {
    await this.cache?.close();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.cache?.close();
  }
}

/**
 * The LM response cache: `@nestjs/cache-manager`'s `CacheModule` over the tiers' Keyv stores (memory LRU, bounded
 * SQLite file, Redis), so `CACHE_MANAGER` sees the same entries, and `LM_CACHE` — the {@link TieredLMCache} the LM
 * consults (cache-manager's own multi-store `get` neither promotes hits nor bounds a hung store, so the LM does
 * not go through it). Global: import it once in `AppModule`.
 */
@Global()
@Module({
  imports: [
    ConfigModule.forFeature(cacheConfig),
    TerminusModule,
    LmCacheTiersModule,
    CacheModule.registerAsync({
      imports: [LmCacheTiersModule],
      inject: [LM_CACHE_TIERS],
      useFactory: (tiers: CacheTier[]) => ({
        // With every tier off, cache-manager would fall back to an unbounded Map; give it a small LRU instead.
        stores:
          tiers.length > 0
            ? tiers.map((t) => t.keyv)
            : [
                new Keyv(new KeyvCacheableMemory({ lruSize: 1000 }), {
                  namespace: undefined,
                  useKeyPrefix: false,
                }),
              ],
      }),
    }),
  ],
  providers: [
    {
      provide: LM_CACHE,
      inject: [LM_CACHE_TIERS, cacheConfig.KEY],
      useFactory: (tiers: CacheTier[], config: ConfigType<typeof cacheConfig>): TieredLMCache | null =>
        tiers.length > 0 ? new TieredLMCache(tiers, { ttlMs: config.ttlMs }) : null,
    },
    LmCacheShutdown,
    CacheHealthIndicator,
    CacheMetrics,
  ],
  exports: [LM_CACHE, CacheHealthIndicator, CacheModule],
})
export class LmCacheModule {}
