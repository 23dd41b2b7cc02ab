import { Inject, Injectable, OnModuleInit, Optional } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { MetricsService } from '../metrics/metrics.service';
import { LM_CACHE } from './cache.constants';
import type { TieredLMCache } from './tiered-lm-cache';

/**
 * Publishes the LM cache in /metrics (a `cache` section: hits and misses per tier) and in Prometheus
 * (`cache_requests_total{tier,result}`, `cache_entries{tier}`, `cache_bytes{tier}`).
 */
@Injectable()
export class CacheMetrics implements OnModuleInit {
  constructor(
    @Inject(LM_CACHE) private readonly cache: TieredLMCache | null,
    // Absent when the cache module is used on its own (its specs); the app always has the global MetricsService.
    // Typed without `| null` so the emitted DI metadata names the class.
    @Optional() private readonly metrics?: MetricsService,
  ) {}

  onModuleInit(): void {
    const cache = this.cache;
    if (!cache || !this.metrics) return;
    const registers = [this.metrics.registry];
    const requests = new Counter({
      name: 'cache_requests_total',
      help: 'LM cache reads by tier and result (hit, miss, error)',
      labelNames: ['tier', 'result'],
      registers,
    });
    cache.addResultListener((tier, result) => requests.inc({ tier, result }));
    const tierGauge = (
      name: string,
      help: string,
      pick: (t: { entries: number | null; bytes: number | null }) => number | null,
    ) =>
      new Gauge({
        name,
        help,
        labelNames: ['tier'],
        registers,
        collect() {
          for (const t of cache.stats().tiers) {
            const value = pick(t);
            if (value !== null) this.set({ tier: t.tier }, value);
          }
        },
      });
    tierGauge('cache_entries', 'Entries held by each LM cache tier', (t) => t.entries);
    tierGauge('cache_bytes', 'Bytes held by each LM cache tier', (t) => t.bytes);
    this.metrics.addSummarySection('cache', () => {
      const { hits, misses, tiers } = cache.stats();
      return {
        hits,
        misses,
        hit_rate: hits + misses ? Math.round((hits / (hits + misses)) * 1e4) / 1e4 : 0,
        tiers: Object.fromEntries(
          tiers.map((t) => [
            t.tier,
            { hits: t.hits, misses: t.misses, errors: t.errors, entries: t.entries, bytes: t.bytes },
          ]),
        ),
      };
    });
  }
}
