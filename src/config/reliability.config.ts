import { registerAs } from '@nestjs/config';
import { readEnv } from './env';

/** Load shedding and graceful shutdown. */
export const reliabilityConfig = registerAs('reliability', () => {
  const env = readEnv('reliability');
  return {
    /** LM-backed requests (/predict, /predict/stream, /batch) running at once in this process. */
    maxConcurrentPredictions: env.int('MAX_CONCURRENT_PREDICTIONS', 128, { min: 1, max: 100_000 }),
    /** Requests that may wait for a slot; beyond it 503 + Retry-After at once. */
    predictionQueueSize: env.int('PREDICTION_QUEUE_SIZE', 64, { min: 0, max: 100_000 }),
    /** How long a queued request waits for a slot before 503. */
    predictionQueueTimeoutMs: env.int('PREDICTION_QUEUE_TIMEOUT_MS', 2000, { min: 1 }),
    /** Retry-After (seconds) sent with a load-shedding or draining 503. */
    overloadRetryAfterSeconds: env.int('OVERLOAD_RETRY_AFTER_S', 1, { min: 1, max: 3600 }),
    /** On SIGTERM: how long in-flight requests may run before open streams are ended with a retryable error. */
    shutdownGraceMs: env.int('SHUTDOWN_GRACE_MS', 20_000, { min: 0 }),
    /** Consecutive failed upstream calls (after the SDK's retries) that open the circuit; 0 disables it. */
    circuitFailureThreshold: env.int('CIRCUIT_FAILURE_THRESHOLD', 5, { min: 0, max: 1000 }),
    /** How long an open circuit fails fast (503 + Retry-After) before one trial call. */
    circuitOpenMs: env.int('CIRCUIT_OPEN_MS', 10_000, { min: 100 }),
  };
});

export type ReliabilityConfig = ReturnType<typeof reliabilityConfig>;
