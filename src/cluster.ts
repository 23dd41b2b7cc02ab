import cluster, { type Worker } from 'node:cluster';
import pino, { type Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import { appConfig } from './config/app.config';
import { observabilityConfig } from './config/observability.config';
import {
  CLUSTER_WORKER_ENV,
  ClusterMessage,
  isClusterMessage,
  type ClusterMetricsMessage,
  type WorkerMetrics,
} from './metrics/cluster-metrics';

/** Restart delay after a crash: doubles per crash within {@link CRASH_WINDOW_MS}, up to {@link MAX_BACKOFF_MS}. */
const BASE_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;
const CRASH_WINDOW_MS = 60_000;
/** How long the primary waits for every worker's registry; below the worker's own wait for the aggregate. */
const COLLECT_TIMEOUT_MS = 3000;

/**
 * `WORKERS>1` (the seed's `uvicorn --workers`): this process becomes a supervisor that forks WORKERS workers, each
 * running the normal bootstrap on the shared port (Node's cluster module balances connections round-robin).
 * Returns false when this process should run the app itself: WORKERS=1, or it is already a worker.
 *
 * The primary restarts a crashed worker with exponential backoff, forwards SIGTERM/SIGINT so every worker drains
 * through its own Nest shutdown hooks (readiness fails, in-flight requests finish), exits once they all have, and
 * answers the workers' requests for one aggregated Prometheus view (src/metrics/cluster-metrics.ts). Workers share
 * the disk cache through the same SQLite file and, across hosts, Redis. A crash loses the worker's in-flight
 * requests, and a connection the primary hands to it in the instant it dies (Node's round-robin handoff).
 */
export function startCluster(): boolean {
  if (!cluster.isPrimary) return false;
  const { workers } = appConfig();
  if (workers <= 1) return false;
  new ClusterPrimary(workers, createLogger()).start();
  return true;
}

function createLogger(): Logger {
  const { logLevel } = observabilityConfig();
  // The same JSON lines as the workers' nestjs-pino logs.
  return pino({
    level: logLevel,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }).child({ context: 'Cluster' });
}

interface Collection {
  waiting: Set<number>;
  results: WorkerMetrics[];
  timer: NodeJS.Timeout;
  done(error: Error | null, text?: string): void;
}

class ClusterPrimary {
  private shuttingDown = false;
  private exitCode = 0;
  private everListened = false;
  private crashes = 0;
  private lastCrashAt = 0;
  private readonly restarts = new Set<NodeJS.Timeout>();
  /** Forked and not yet exited (`cluster.workers` keeps a dead worker until its IPC channel closes too). */
  private readonly alive = new Map<number, Worker>();
  /** Workers that answer collect requests (their MetricsService exists). */
  private readonly metricsReady = new Set<number>();
  private readonly collections = new Map<number, Collection>();
  private nextCollection = 0;

  constructor(
    private readonly size: number,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.logger.info({ workers: this.size }, `starting ${this.size} workers`);
    cluster.on('listening', (worker) => this.onListening(worker));
    cluster.on('exit', (worker, code, signal) => this.onExit(worker, code, signal));
    cluster.on('message', (worker, message) => this.onMessage(worker, message));
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => this.onSignal(signal));
    for (let i = 0; i < this.size; i++) this.fork();
  }

  private fork(): void {
    const worker = cluster.fork({ [CLUSTER_WORKER_ENV]: '1' });
    this.alive.set(worker.id, worker);
  }

  private onListening(worker: Worker): void {
    this.everListened = true;
    this.logger.info({ worker: worker.id, workerPid: worker.process.pid }, 'worker listening');
  }

  private onExit(worker: Worker, code: number | null, signal: string | null): void {
    this.alive.delete(worker.id);
    this.metricsReady.delete(worker.id);
    for (const [id, collection] of this.collections) {
      if (collection.waiting.delete(worker.id)) this.settle(id, new Error(`worker ${worker.id} exited`));
    }
    const clean = code === 0 || signal === 'SIGTERM' || signal === 'SIGINT';
    if (this.shuttingDown) {
      if (!clean) this.exitCode = 1;
      this.logger.info({ worker: worker.id, code, signal }, 'worker stopped');
      if (this.alive.size === 0) this.exit();
      return;
    }
    if (!this.everListened) {
      // A worker that cannot boot (bad configuration or program state) would fail the same way forever.
      this.logger.fatal(
        { worker: worker.id, code, signal },
        'a worker failed to start; stopping the cluster',
      );
      this.exitCode = 1;
      this.shutdown('SIGTERM');
      return;
    }
    const now = Date.now();
    if (now - this.lastCrashAt > CRASH_WINDOW_MS) this.crashes = 0;
    this.lastCrashAt = now;
    this.crashes += 1;
    const delay = Math.min(BASE_BACKOFF_MS * 2 ** (this.crashes - 1), MAX_BACKOFF_MS);
    this.logger.error(
      { worker: worker.id, workerPid: worker.process.pid, code, signal, restartInMs: delay },
      'worker died; restarting',
    );
    const timer = setTimeout(() => {
      this.restarts.delete(timer);
      if (!this.shuttingDown) this.fork();
    }, delay);
    this.restarts.add(timer);
  }

  private onSignal(signal: NodeJS.Signals): void {
    if (!this.shuttingDown) return this.shutdown(signal);
    // A second signal (Ctrl-C twice) does not wait for the drain.
    this.logger.warn({ signal }, 'second signal: killing the workers now');
    this.exitCode = 1;
    for (const worker of this.alive.values()) worker.process.kill('SIGKILL');
  }

  private shutdown(signal: NodeJS.Signals): void {
    this.shuttingDown = true;
    this.logger.info({ signal, workers: this.alive.size }, 'shutting down: workers drain');
    for (const timer of this.restarts) clearTimeout(timer);
    this.restarts.clear();
    if (this.alive.size === 0) return this.exit();
    // Each worker's Nest shutdown hooks fail readiness, close its server and let in-flight requests finish. A
    // worker that got the signal from the terminal too ignores the second one (Nest does).
    for (const worker of this.alive.values()) worker.process.kill(signal);
  }

  private exit(): void {
    this.logger.info({ code: this.exitCode }, 'all workers stopped');
    process.exit(this.exitCode);
  }

  private onMessage(worker: Worker, message: unknown): void {
    if (!isClusterMessage(message)) return;
    switch (message.type) {
      case ClusterMessage.metricsReady:
        this.metricsReady.add(worker.id);
        return;
      case ClusterMessage.collectResponse:
        return this.onCollected(worker, message);
      case ClusterMessage.aggregateRequest:
        return this.aggregate(worker, message.id);
    }
  }

  /** Answers one worker's scrape with the sum over every worker whose metrics exist. */
  private aggregate(requester: Worker, requestId: number | undefined): void {
    if (requestId === undefined) return;
    const reply = (answer: Omit<ClusterMetricsMessage, 'type' | 'id'>) => {
      if (!requester.isConnected()) return;
      try {
        requester.send({ type: ClusterMessage.aggregateResponse, id: requestId, ...answer });
      } catch {
        // The requester went away; its scrape is gone with it.
      }
    };
    const id = this.nextCollection++;
    const waiting = new Set(
      [...this.metricsReady].filter((workerId) => this.alive.get(workerId)?.isConnected()),
    );
    const collection: Collection = {
      waiting,
      results: [],
      timer: setTimeout(
        () => this.settle(id, new Error('a worker did not send its metrics in time')),
        COLLECT_TIMEOUT_MS,
      ),
      done: (error, text) => (error ? reply({ error: error.message }) : reply({ text })),
    };
    this.collections.set(id, collection);
    for (const workerId of waiting) {
      try {
        this.alive.get(workerId)?.send({ type: ClusterMessage.collectRequest, id });
      } catch {
        waiting.delete(workerId);
      }
    }
    if (waiting.size === 0) this.settle(id, null);
  }

  private onCollected(worker: Worker, message: ClusterMetricsMessage): void {
    const collection = message.id === undefined ? undefined : this.collections.get(message.id);
    if (!collection || !collection.waiting.delete(worker.id)) return;
    if (message.error !== undefined || !message.metrics) {
      return this.settle(message.id!, new Error(`worker ${worker.id}: ${message.error ?? 'no metrics'}`));
    }
    collection.results.push(...message.metrics);
    if (collection.waiting.size === 0) this.settle(message.id!, null);
  }

  private settle(id: number, error: Error | null): void {
    const collection = this.collections.get(id);
    if (!collection) return;
    this.collections.delete(id);
    clearTimeout(collection.timer);
    if (error) return collection.done(error);
    const fail = (e: unknown) => collection.done(e instanceof Error ? e : new Error(String(e)));
    try {
      AggregatorRegistry.aggregate(collection.results)
        .metrics()
        .then((text) => collection.done(null, text), fail);
    } catch (e: unknown) {
      fail(e);
    }
  }
}
