import { Module } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule, ThrottlerStorageService } from '@nestjs/throttler';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import Redis from 'ioredis';
import { securityConfig } from '../config/security.config';
import { ApiKeyGuard } from './api-key.guard';
import { FailOpenThrottlerStorage } from './fail-open-storage';
import { RateLimitGuard } from './rate-limit.guard';

/** Redis counters (shared by replicas) that fall back to in-process counters while Redis is unavailable. */
function redisStorage(url: string): FailOpenThrottlerStorage {
  const redis = new Redis(url, {
    enableOfflineQueue: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 1000,
    commandTimeout: 500,
    // On close, a socket to a dead or frozen Redis is destroyed after this instead of holding the process 2 s.
    disconnectTimeout: 200,
  });
  // Without a listener ioredis reports connection errors as unhandled 'error' events.
  redis.on('error', () => undefined);
  return new FailOpenThrottlerStorage(
    new ThrottlerStorageRedisService(redis),
    new ThrottlerStorageService(),
    500,
    () => redis.disconnect(),
  );
}

/**
 * Access control for every route: rate limit first (so unauthenticated key guessing is limited per address),
 * then the API key. Both answer through the error table (429 + Retry-After, 401).
 */
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [securityConfig.KEY],
      useFactory: (cfg: ConfigType<typeof securityConfig>) => ({
        throttlers: [{ name: 'default', ttl: cfg.rateLimitTtlMs, limit: Math.max(1, cfg.rateLimit) }],
        storage: cfg.redisUrl && cfg.rateLimit > 0 ? redisStorage(cfg.redisUrl) : undefined,
      }),
    }),
  ],
  providers: [
    { provide: APP_GUARD, useClass: RateLimitGuard },
    { provide: APP_GUARD, useClass: ApiKeyGuard },
  ],
})
export class SecurityModule {}
