import { Logger } from '@nestjs/common';
import type { Keyv } from 'keyv';
import type { CachedCompletion, LMCache } from '../dspy';
import {
  type CacheLogger,
  type CacheResult,
  type CacheResultListener,
  type CacheTierName,
  type CacheTierStats,
  errorMessage,
  type LMCacheStats,
  type TierHealth,
  type TierSize,
} from './cache.types';
import { withTimeout } from './with-timeout';

/** One level of the LM cache: a Keyv store plus what the tiered cache needs to report on and close it. */
export interface CacheTier {
  readonly name: CacheTierName;
  /** The store, as `@nestjs/cache-manager` also holds it. Built with `throwOnErrors`, so failures surface. */
  readonly keyv: Keyv;
  /** Bound for each read and write; undefined for in-process tiers that answer synchronously. */
  readonly timeoutMs?: number;
  size(): TierSize;
  health(): TierHealth | Promise<TierHealth>;
  /** Bounded wait for a remote tier to connect at boot; resolves false when it did not (the tier still retries). */
  ready?(): Promise<boolean>;
  close(): Promise<void>;
}

export interface TieredLMCacheOptions {
  /** Time to live of written entries in ms; 0 or undefined keeps them until evicted. */
  ttlMs?: number;
  onResult?: CacheResultListener;
  logger?: CacheLogger;
  /** A failing tier is logged at most once per interval (with the count of failures in between). */
  errorLogIntervalMs?: number;
  /** Bound for a tier's health probe when the tier has no `timeoutMs`. */
  healthTimeoutMs?: number;
}

interface Counters {
  hits: number;
  misses: number;
  errors: number;
  writes: number;
  writeErrors: number;
}

interface LogState {
  lastLoggedAt: number;
  suppressed: number;
}

/**
 * DSPy's cache layers (`dspy.clients.cache.Cache`) over any number of tiers, fastest first — here memory → disk →
 * Redis. A read walks down the tiers and copies a hit into every tier above it (keeping the entry's remaining TTL);
 * a write goes to every tier at once. A tier that throws or exceeds its time budget counts as an error and is
 * treated as a miss or a dropped write: `get` and `put` never reject, so a sick tier never fails a request.
 *
 * Values are copied once on the way in and deep-frozen (DSPy deep-copies every hit; freezing gives the same guarantee
 * without a copy per hit, the hot path of a cached answer), so a caller mutating an answer cannot
 * change what the cache holds.
 */
export class TieredLMCache implements LMCache {
  private readonly counters: Counters[];
  private readonly listeners = new Set<CacheResultListener>();
  private readonly logState = new Map<string, LogState>();
  private readonly ttlMs: number | undefined;
  private readonly logger: CacheLogger;
  private readonly errorLogIntervalMs: number;
  private readonly healthTimeoutMs: number;
  private hits = 0;
  private misses = 0;
  private closing: Promise<void> | null = null;

  constructor(
    readonly tiers: readonly CacheTier[],
    options: TieredLMCacheOptions = {},
  ) {
    if (tiers.length === 0) throw new RangeError('TieredLMCache needs at least one tier');
    const names = new Set(tiers.map((t) => t.name));
    if (names.size !== tiers.length) throw new RangeError('TieredLMCache tiers must have distinct names');
    this.counters = tiers.map(() => ({ hits: 0, misses: 0, errors: 0, writes: 0, writeErrors: 0 }));
    this.ttlMs = options.ttlMs && options.ttlMs > 0 ? options.ttlMs : undefined;
    this.logger = options.logger ?? new Logger('TieredLMCache');
    this.errorLogIntervalMs = options.errorLogIntervalMs ?? 30_000;
    this.healthTimeoutMs = options.healthTimeoutMs ?? 1000;
    if (options.onResult) this.listeners.add(options.onResult);
  }

  /** The Keyv stores, fastest first, for `CacheModule.registerAsync({ useFactory: () => ({ stores }) })`. */
  keyvStores(): Keyv[] {
    return this.tiers.map((t) => t.keyv);
  }

  /** Subscribes to per-tier read outcomes (e.g. for `cache_requests_total{tier,result}`); returns the unsubscribe. */
  addResultListener(listener: CacheResultListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async get(key: string): Promise<CachedCompletion | undefined> {
    for (let i = 0; i < this.tiers.length; i++) {
      const tier = this.tiers[i];
      const counters = this.counters[i];
      let raw: { value?: unknown; expires?: number } | undefined;
      try {
        raw = await withTimeout(
          tier.keyv.get<unknown>(key, { raw: true }),
          tier.timeoutMs,
          `cache tier ${tier.name} get`,
        );
      } catch (error: unknown) {
        counters.errors += 1;
        this.report(tier.name, 'error');
        this.logFailure(tier.name, 'read', error);
        continue;
      }
      const value = raw?.value;
      if (value === undefined || value === null) {
        counters.misses += 1;
        this.report(tier.name, 'miss');
        continue;
      }
      if (!isCachedCompletion(value)) {
        counters.errors += 1;
        this.report(tier.name, 'error');
        this.logFailure(tier.name, 'read', new Error('the stored value is not a cached completion'));
        continue;
      }
      // Memory holds frozen values already; a value read from disk or Redis is a fresh object, frozen here.
      deepFreeze(value);
      counters.hits += 1;
      this.hits += 1;
      this.report(tier.name, 'hit');
      if (i > 0) {
        const remaining = typeof raw?.expires === 'number' ? raw.expires - Date.now() : undefined;
        if (remaining === undefined || remaining > 0) await this.write(0, i, key, value, remaining);
      }
      return value;
    }
    this.misses += 1;
    return undefined;
  }

  async put(key: string, value: CachedCompletion): Promise<void> {
    let copy: CachedCompletion;
    try {
      copy = deepFreeze(structuredClone(value));
    } catch (error: unknown) {
      this.logFailure('memory', 'write', error);
      return;
    }
    await this.write(0, this.tiers.length, key, copy, this.ttlMs);
  }

  stats(): LMCacheStats {
    const tiers: CacheTierStats[] = this.tiers.map((tier, i) => ({
      tier: tier.name,
      ...this.counters[i],
      ...safeSize(tier),
    }));
    return { tiers, hits: this.hits, misses: this.misses };
  }

  /** Each tier's availability, probed in parallel, each within its time budget. Never rejects. */
  async health(): Promise<Partial<Record<CacheTierName, TierHealth>>> {
    const results = await Promise.all(
      this.tiers.map(async (tier): Promise<[CacheTierName, TierHealth]> => {
        try {
          const health = await withTimeout(
            Promise.resolve().then(() => tier.health()),
            tier.timeoutMs ?? this.healthTimeoutMs,
            `cache tier ${tier.name} health`,
          );
          return [tier.name, health];
        } catch (error: unknown) {
          return [tier.name, { status: 'down', error: errorMessage(error) }];
        }
      }),
    );
    return Object.fromEntries(results);
  }

  /** Closes every tier (bounded by each tier's own close). Idempotent; never rejects. */
  close(): Promise<void> {
    this.closing ??= Promise.allSettled(this.tiers.map(async (tier) => tier.close())).then((results) => {
      results.forEach((r, i) => {
        if (r.status === 'rejected') {
          this.logger.warn(`Closing cache tier ${this.tiers[i].name} failed: ${errorMessage(r.reason)}`);
        }
      });
    });
    return this.closing;
  }

  // ---------------------------------------------------------------------------------------------------------------

  /** Writes to tiers [from, to) in parallel; each failure is counted and logged, never thrown. */
  private async write(
    from: number,
    to: number,
    key: string,
    value: CachedCompletion,
    ttlMs: number | undefined,
  ): Promise<void> {
    const writes: Promise<void>[] = [];
    for (let i = from; i < to; i++) {
      const tier = this.tiers[i];
      const counters = this.counters[i];
      // Values are frozen, so tiers may share one: memory keeps it by reference, the others serialize it.
      writes.push(
        withTimeout(tier.keyv.set(key, value, ttlMs), tier.timeoutMs, `cache tier ${tier.name} set`).then(
          (ok) => {
            if (ok !== false) counters.writes += 1;
          },
          (error: unknown) => {
            counters.writeErrors += 1;
            this.logFailure(tier.name, 'write', error);
          },
        ),
      );
    }
    await Promise.all(writes);
  }

  private report(tier: CacheTierName, result: CacheResult): void {
    for (const listener of this.listeners) {
      try {
        listener(tier, result);
      } catch {
        // A metrics callback must not break a cache read.
      }
    }
  }

  private logFailure(tier: CacheTierName, op: 'read' | 'write', error: unknown): void {
    const id = `${tier}:${op}`;
    const now = Date.now();
    const state = this.logState.get(id);
    if (state && now - state.lastLoggedAt < this.errorLogIntervalMs) {
      state.suppressed += 1;
      return;
    }
    const suppressed = state?.suppressed ?? 0;
    this.logState.set(id, { lastLoggedAt: now, suppressed: 0 });
    this.logger.warn(
      `Cache tier ${tier} ${op} failed, treated as a ${op === 'read' ? 'miss' : 'dropped write'}: ${errorMessage(
        error,
      )}${suppressed > 0 ? ` (${suppressed} more since the last report)` : ''}`,
    );
  }
}

/** Freezes `value` and everything reachable from it; a frozen object is taken as already done. */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  for (const child of Object.values(value)) deepFreeze(child);
  return Object.freeze(value);
}

function safeSize(tier: CacheTier): TierSize {
  try {
    return tier.size();
  } catch {
    return { entries: null, bytes: null };
  }
}

/** The shape the LM stores; anything else found in a tier (a foreign writer, an old format) is not served. */
export function isCachedCompletion(value: unknown): value is CachedCompletion {
  if (!value || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return (
    Array.isArray(v.outputs) &&
    v.outputs.every((o) => typeof o === 'string') &&
    typeof v.usage === 'object' &&
    v.usage !== null &&
    Array.isArray(v.finishReasons) &&
    (v.responseModel === null || typeof v.responseModel === 'string')
  );
}
