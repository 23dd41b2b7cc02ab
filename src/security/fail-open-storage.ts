import { Logger } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { ThrottlerStorageRecord } from '@nestjs/throttler/dist/throttler-storage-record.interface';

/**
 * Rate-limit counters in Redis (shared by every replica), falling back to this process' own counters when Redis
 * fails or is slower than `timeoutMs`: a Redis outage weakens the limit to per-process, it never fails requests.
 */
export class FailOpenThrottlerStorage implements ThrottlerStorage {
  private readonly logger = new Logger('RateLimit');
  private warned = false;

  constructor(
    private readonly primary: ThrottlerStorage,
    private readonly fallback: ThrottlerStorage,
    private readonly timeoutMs: number,
    private readonly onClose: () => void = () => undefined,
  ) {}

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
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('rate-limit store timed out')), this.timeoutMs);
      });
      const record = await Promise.race([
        this.primary.increment(key, ttl, limit, blockDuration, throttlerName),
        timeout,
      ]);
      this.warned = false;
      return record;
    } catch (error) {
      if (!this.warned) {
        this.warned = true;
        this.logger.warn(
          `Redis rate-limit store unavailable (${error instanceof Error ? error.message : String(error)}); counting in-process`,
        );
      }
      return this.fallback.increment(key, ttl, limit, blockDuration, throttlerName);
    } finally {
      clearTimeout(timer);
    }
  }
}
