import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { errorMessage, type TierHealth } from './cache.types';
import { LM_CACHE } from './cache.constants';
import type { TieredLMCache } from './tiered-lm-cache';
import { withTimeout } from './with-timeout';

/** Each tier's state plus its entries and bytes, as `/health` shows them. */
export type CacheTierReport = TierHealth & { entries: number | null; bytes: number | null };

/**
 * The LM cache tiers for `/health`: each tier's state (Redis reachable or not), entries and bytes. A down tier makes
 * the cache `down`, which makes `/health` degraded — it is never used by readiness: the service answers without
 * its cache. Never throws; bounded by the tiers' own timeouts and an overall one.
 */
@Injectable()
export class CacheHealthIndicator {
  static readonly TIMEOUT_MS = 1000;

  constructor(
    private readonly indicator: HealthIndicatorService,
    @Inject(LM_CACHE) private readonly cache: TieredLMCache | null,
  ) {}

  async isHealthy(key = 'cache') {
    const check = this.indicator.check(key);
    if (!this.cache) return check.up({ enabled: false });
    try {
      const health = await withTimeout(this.cache.health(), CacheHealthIndicator.TIMEOUT_MS, 'cache health');
      const tiers: Record<string, CacheTierReport> = {};
      for (const { tier, entries, bytes } of this.cache.stats().tiers) {
        tiers[tier] = { ...(health[tier] ?? { status: 'down', error: 'no report' }), entries, bytes };
      }
      const down = Object.keys(tiers).filter((name) => tiers[name].status !== 'up');
      return down.length > 0
        ? check.down({ enabled: true, down, tiers })
        : check.up({ enabled: true, tiers });
    } catch (error: unknown) {
      return check.down({ enabled: true, error: errorMessage(error) });
    }
  }
}
