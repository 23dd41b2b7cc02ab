/** The LM cache tiers, in the order a read walks them. */
export type CacheTierName = 'memory' | 'disk' | 'redis';

/** The outcome of one tier lookup; `cache_requests_total{tier,result}` uses these labels. */
export type CacheResult = 'hit' | 'miss' | 'error';

/** Called once per tier consulted by a read (a tier below a hit is not consulted). Must not throw. */
export type CacheResultListener = (tier: CacheTierName, result: CacheResult) => void;

/** What a tier holds right now; null when the tier cannot tell (yet). */
export interface TierSize {
  entries: number | null;
  bytes: number | null;
}

/** A tier's availability as `/health` reports it. */
export interface TierHealth {
  status: 'up' | 'down';
  /** Why the tier is down, or the last error it saw. */
  error?: string;
  [detail: string]: unknown;
}

export interface CacheTierStats extends TierSize {
  tier: CacheTierName;
  /** Reads answered by this tier. */
  hits: number;
  /** Reads this tier could not answer (another tier or the upstream did). */
  misses: number;
  /** Reads that failed or timed out in this tier (treated as misses). */
  errors: number;
  /** Writes stored (puts and promotions). */
  writes: number;
  /** Writes that failed or timed out (dropped). */
  writeErrors: number;
}

export interface LMCacheStats {
  tiers: CacheTierStats[];
  /** Reads answered by any tier. */
  hits: number;
  /** Reads no tier could answer. */
  misses: number;
}

/** The subset of Nest's logger the stores use, so they also run without Nest. */
export interface CacheLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** The message of anything thrown, for logs and health details. */
export function errorMessage(error: unknown): string {
  // Duck-typed: errors from native addons or other realms are not `instanceof Error` here.
  if (typeof error === 'object' && error !== null) {
    const { message, name } = error as { message?: unknown; name?: unknown };
    if (typeof message === 'string' && message) return message;
    if (typeof name === 'string' && name) return name;
  }
  return String(error);
}
