import {
  LMRateLimitError,
  LMServerError,
  LMTimeoutError,
  LMTransportError,
  type LMCallOptions,
  type LMProvider,
  type LMRequest,
  type LMStreamChunk,
} from '../dspy';
import { ServiceUnavailableError } from '../common/errors/service-errors';
import type { CircuitListener } from '../metrics/reliability-metrics';

export interface CircuitBreakerOptions {
  /** Consecutive upstream failures (after the SDK's own retries) that open the circuit; 0 disables it. */
  failureThreshold: number;
  /** How long the circuit stays open before one trial call (half-open). */
  openMs: number;
  now?: () => number;
}

export type CircuitState = 'closed' | 'open' | 'half-open';
export type { CircuitListener };

/** Failures that say the upstream is unhealthy; a 4xx about this request or a client abort does not. */
function isUpstreamFailure(error: unknown): boolean {
  return (
    error instanceof LMRateLimitError ||
    error instanceof LMServerError ||
    error instanceof LMTimeoutError ||
    error instanceof LMTransportError
  );
}

/**
 * A circuit breaker around one upstream provider. It adds no retries: the openai SDK (LM_MAX_RETRIES, backoff
 * with jitter, honouring Retry-After up to its 60 s cap) stays the only retry layer. After `failureThreshold`
 * consecutive failed calls it fails fast with 503 + Retry-After for `openMs`, then lets one trial call through:
 * success closes it, failure opens it again. A stream counts as failed only when it fails; it is never retried.
 */
export class CircuitBreakerProvider implements LMProvider {
  private failures = 0;
  private openedAt = 0;
  private state: CircuitState = 'closed';
  private trialInFlight = false;
  private readonly now: () => number;
  private readonly listeners = new Set<CircuitListener>();
  /** Calls refused while open, for tests and metrics. */
  rejected = 0;

  constructor(
    private readonly inner: LMProvider,
    private readonly options: CircuitBreakerOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Told of every refusal and every opening (metrics). Listeners run inline and must not throw. */
  addListener(listener: CircuitListener): void {
    this.listeners.add(listener);
  }

  get circuit(): CircuitState {
    if (this.state === 'open' && this.now() - this.openedAt >= this.options.openMs) return 'half-open';
    return this.state;
  }

  async complete(request: LMRequest, options?: LMCallOptions) {
    const trial = this.admit();
    try {
      const response = await this.inner.complete(request, options);
      this.onSuccess();
      return response;
    } catch (error) {
      this.onFailure(error, trial);
      throw error;
    }
  }

  async *stream(request: LMRequest, options?: LMCallOptions): AsyncIterable<LMStreamChunk> {
    const trial = this.admit();
    try {
      for await (const chunk of this.inner.stream(request, options)) yield chunk;
      this.onSuccess();
    } catch (error) {
      this.onFailure(error, trial);
      throw error;
    } finally {
      if (trial) this.trialInFlight = false;
    }
  }

  /** Throws 503 while open; returns whether this call is the half-open trial. */
  private admit(): boolean {
    if (this.options.failureThreshold === 0) return false;
    const state = this.circuit;
    if (state === 'closed') return false;
    if (state === 'half-open' && !this.trialInFlight) {
      this.trialInFlight = true;
      return true;
    }
    this.rejected++;
    for (const l of this.listeners) l.rejected?.();
    const remaining = Math.max(0, this.options.openMs - (this.now() - this.openedAt));
    throw new ServiceUnavailableError(
      'The language model provider is failing; requests are paused briefly.',
      Math.max(1, Math.ceil(remaining / 1000)),
    );
  }

  private onSuccess(): void {
    this.failures = 0;
    this.state = 'closed';
    this.trialInFlight = false;
  }

  private onFailure(error: unknown, trial: boolean): void {
    if (trial) this.trialInFlight = false;
    if (this.options.failureThreshold === 0 || !isUpstreamFailure(error)) return;
    this.failures++;
    if (trial || this.failures >= this.options.failureThreshold) {
      // Calls admitted before it opened may fail after: they push the trial back but are not a new opening.
      const opening = trial || this.state !== 'open';
      this.state = 'open';
      this.openedAt = this.now();
      if (opening) for (const l of this.listeners) l.opened?.();
    }
  }
}
