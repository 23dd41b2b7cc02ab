import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnModuleDestroy,
  OnModuleInit,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { setMaxListeners } from 'node:events';
import { ServiceDrainingError, ServiceUnavailableError } from '../common/errors/service-errors';
import { reliabilityConfig } from '../config/reliability.config';
import { MetricsService } from '../metrics/metrics.service';
import { disconnectRouteOf } from './sse';

/** Gives the slot back; calling it more than once is harmless. */
export type Release = () => void;

interface Waiter {
  grant: () => void;
  refuse: (error: Error) => void;
}

/**
 * Load shedding and draining for the LM-backed routes. At most MAX_CONCURRENT_PREDICTIONS requests run at once;
 * up to PREDICTION_QUEUE_SIZE more wait at most PREDICTION_QUEUE_TIMEOUT_MS for a slot; anything beyond is
 * refused at once with 503 + Retry-After, so an overload costs the refused client one round trip and the
 * admitted ones nothing. Probes never pass through here.
 *
 * On shutdown (Nest's destroy hook, the same moment readiness fails) new requests get 503 `service_draining`;
 * the before-shutdown hook then waits up to SHUTDOWN_GRACE_MS for in-flight requests and, when it expires, fires
 * `drainSignal`, which ends every stream still open with a retryable `error` event and `[DONE]`.
 *
 * Every refusal, and every client that disconnects while holding a slot (its work is aborted), is counted in the
 * `reliability` metrics; the signal passed to `acquire` (from `clientSignal`) says which route it was.
 */
@Injectable()
export class AdmissionService implements OnModuleInit, OnModuleDestroy, BeforeApplicationShutdown {
  private readonly logger = new Logger(AdmissionService.name);
  private active = 0;
  private readonly queue: Waiter[] = [];
  private draining = false;
  private readonly drainController = new AbortController();
  private idleWaiters: Array<() => void> = [];
  /** Counters for tests and /metrics-style inspection. */
  readonly stats = { admitted: 0, queued: 0, shed: 0, drained: 0 };

  constructor(
    @Inject(reliabilityConfig.KEY) private readonly cfg: ConfigType<typeof reliabilityConfig>,
    private readonly metrics: MetricsService,
  ) {
    // Every open stream listens on it.
    setMaxListeners(0, this.drainController.signal);
  }

  onModuleInit(): void {
    this.metrics.reliability.watchAdmission(this);
  }

  /** Aborts when the grace period has expired: open streams end with the draining event. */
  get drainSignal(): AbortSignal {
    return this.drainController.signal;
  }

  get inFlight(): number {
    return this.active;
  }

  get waiting(): number {
    return this.queue.length;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** A slot for one LM-backed request, or a ServiceUnavailableError (503) now or after the queue timeout. */
  acquire(signal?: AbortSignal): Promise<Release> {
    if (this.draining) return Promise.reject(this.drainingError());
    // Gone already (e.g. while the rate limiter waited on Redis): no slot, no work, nobody to answer.
    if (signal?.aborted) return Promise.reject(new ServiceUnavailableError('The client left.', 1));
    if (this.active < this.cfg.maxConcurrentPredictions) {
      this.active++;
      this.stats.admitted++;
      return Promise.resolve(this.watchClient(this.releaser(), signal));
    }
    if (this.queue.length >= this.cfg.predictionQueueSize) {
      this.stats.shed++;
      this.metrics.reliability.shed('queue_full');
      return Promise.reject(this.overloaded());
    }
    this.stats.queued++;
    return new Promise<Release>((resolve, reject) => {
      const leave = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
      };
      const waiter: Waiter = {
        grant: () => {
          leave();
          this.stats.admitted++;
          resolve(this.watchClient(this.releaser(), signal));
        },
        refuse: (error) => {
          leave();
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.stats.shed++;
        this.metrics.reliability.shed('queue_timeout');
        waiter.refuse(this.overloaded());
      }, this.cfg.predictionQueueTimeoutMs);
      const onAbort = () => waiter.refuse(new ServiceUnavailableError('The client left while queued.', 1));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  /** Readiness already fails at this point; from now on new predictions are refused. */
  onModuleDestroy(): void {
    if (this.draining) return;
    this.draining = true;
    for (const waiter of [...this.queue]) waiter.refuse(this.drainingError());
  }

  /** Waits for in-flight requests up to SHUTDOWN_GRACE_MS, then ends the streams still open. */
  async beforeApplicationShutdown(): Promise<void> {
    this.onModuleDestroy();
    if (this.active > 0) {
      this.logger.log(`draining: waiting up to ${this.cfg.shutdownGraceMs} ms for ${this.active} request(s)`);
      const idle = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), this.cfg.shutdownGraceMs);
      });
      const finished = await Promise.race([idle, expired]);
      clearTimeout(timer);
      if (!finished) {
        this.logger.warn(`draining: grace period over; ending ${this.active} open request(s)`);
        this.drainController.abort();
        // Streams end synchronously on the signal; give their sockets a moment to flush the final event.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  private drainingError(): ServiceDrainingError {
    this.stats.drained++;
    this.metrics.reliability.refusedDraining();
    return new ServiceDrainingError(this.cfg.overloadRetryAfterSeconds);
  }

  /** Counts a client that disconnects while it holds the slot: the work behind it is being aborted. */
  private watchClient(release: Release, signal?: AbortSignal): Release {
    const route = disconnectRouteOf(signal);
    if (!signal || !route || signal.aborted) return release;
    const onAbort = () => this.metrics.reliability.clientDisconnected(route);
    signal.addEventListener('abort', onAbort, { once: true });
    return () => {
      signal.removeEventListener('abort', onAbort);
      release();
    };
  }

  private overloaded(): ServiceUnavailableError {
    return new ServiceUnavailableError(
      'The service is at capacity; retry shortly.',
      this.cfg.overloadRetryAfterSeconds,
    );
  }

  private releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.queue[0];
      if (next && !this.draining) {
        // The slot passes straight to the next waiter: `active` is unchanged.
        next.grant();
        return;
      }
      this.active--;
      if (this.active === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    };
  }
}
