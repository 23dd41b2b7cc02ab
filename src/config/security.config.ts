import { registerAs } from '@nestjs/config';
import { ConfigError, readEnv } from './env';

function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Access control: API keys, CORS allowlist, rate limits. */
export const securityConfig = registerAs('security', () => {
  const env = readEnv('security');
  const apiKeys = list(env.string('API_KEYS', ''));
  const corsOrigins = list(env.string('CORS_ORIGINS', ''));
  const corsCredentials = env.bool('CORS_CREDENTIALS', false);
  if (corsCredentials && corsOrigins.includes('*')) {
    throw new ConfigError(
      'Invalid configuration (security): CORS_ORIGINS="*" cannot be combined with CORS_CREDENTIALS=true; list the origins',
    );
  }
  return {
    /** Empty = the API is open (no key required). */
    apiKeys,
    /** Whether /metrics also needs a key (probes under /health never do). */
    metricsRequireKey: env.bool('METRICS_REQUIRE_KEY', false),
    /** Empty = no CORS headers at all (same-origin only). */
    corsOrigins,
    corsCredentials,
    /** Requests per RATE_LIMIT_TTL_MS per API key (or client address without one); 0 disables the limit. */
    rateLimit: env.int('RATE_LIMIT', 0, { min: 0 }),
    rateLimitTtlMs: env.int('RATE_LIMIT_TTL_MS', 60_000, { min: 100 }),
    /** Redis for the shared rate-limit counters; unset = in-memory per process. */
    redisUrl: env.optionalString('REDIS_URL'),
    /** Express `trust proxy` (e.g. 1 behind one load balancer), so the client address is the real one. */
    trustProxy: env.int('TRUST_PROXY_HOPS', 0, { min: 0, max: 10 }),
  };
});

export type SecurityConfig = ReturnType<typeof securityConfig>;
