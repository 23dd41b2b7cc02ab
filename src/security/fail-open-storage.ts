import { Logger } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { ThrottlerStorageRecord } from '@nestjs/throttler/dist/throttler-storage-record.interface';

/**
 * Rate-limit counters in Redis (shared by every replica), falling back to this process' own counters when Redis
 * fails or is slower than `timeoutMs`: a Redis outage weakens the limit to per-process, it never fails requests.
 *
 * After a failure Redis is skipped for `retryAfterMs`, then one request at a time tries it again: without that every
 * request of an outage would wait `timeoutMs` for a dead or frozen Redis (measured: p50 529 ms per request with
 * Redis killed, memory cache hits included — test/reliability/redis-faults.e2e-spec.ts).
 */
export class FailOpenThrottlerStorage implements ThrottlerStorage {
  private readonly logger = new Logger('RateLimit');
  private warned = false;
  /** While `Date.now()` is below this, Redis is not asked; 0 while Redis is healthy. */
  private skipUntil = 0;
  private probing = false;

  constructor(
    private readonly primary: ThrottlerStorage,
    private readonly fallback: ThrottlerStorage,
    private readonly timeoutMs: number,
    private readonly onClose: () => void = () => undefined,
    private readonly retryAfterMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether requests are being counted in-process because Redis failed recently. */
  get fallingBack(): boolean {
    return this.skipUntil > 0;
  }

  /** Nest calls this on the storage provider: closes the Redis connection and the in-memory timers. */
  onApplicationShutdown(): void {
    for (const store of [this.primary, this.fallback] as unknown as Array<
      Partial<Record<string, () => void>>
    >) {
      store.onModuleDestroy?.();
      store.onApplicationShutdown?.();
    }
    this.onClose();
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    if (this.skipUntil > 0 && (this.now() < this.skipUntil || this.probing)) {
      return this.fallback.increment(key, ttl, limit, blockDuration, throttlerName);
    }
    const probe = this.skipUntil > 0;
    if (probe) this.probing = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('rate-limit store timed out')), this.timeoutMs);
      });
      const record = await Promise.race([
        this.primary.increment(key, ttl, limit, blockDuration, throttlerName),
        timeout,
      ]);
      if (this.warned) this.logger.log('Redis rate-limit store available again');
      this.warned = false;
      this.skipUntil = 0;
      return record;
    } catch (error) {
      this.skipUntil = this.now() + this.retryAfterMs;
      if (!this.warned) {
        this.warned = true;
        this.logger.warn(
          `Redis rate-limit store unavailable (${error instanceof Error ? error.message : String(error)}); counting in-process`,
        );
      }
      return this.fallback.increment(key, ttl, limit, blockDuration, throttlerName);
    } finally {
      clearTimeout(timer);
      if (probe) this.probing = false;
    }
  }
}
