import cluster from 'node:cluster';
import type { MetricObjectWithValues, MetricValue, Registry } from 'prom-client';

/**
 * One Prometheus view over a `WORKERS>1` cluster (src/cluster.ts). Each worker keeps its own registry; a scrape of
 * any worker's `/metrics/prometheus` asks the primary, which collects every live worker's registry as JSON and sums
 * them with prom-client's `AggregatorRegistry`. Only workers forked by our primary take part (it sets
 * {@link CLUSTER_WORKER_ENV}): under another cluster manager (PM2…) each process keeps answering for itself.
 */
export const CLUSTER_WORKER_ENV = 'DSPY_CLUSTER_WORKER';

/** IPC message types between the primary and its workers. */
export const ClusterMessage = {
  /** worker → primary: this worker answers collect requests from now on. */
  metricsReady: 'dspy:metrics:ready',
  /** primary → worker: send your registry as JSON. */
  collectRequest: 'dspy:metrics:collect',
  /** worker → primary: `{ id, metrics }` or `{ id, error }`. */
  collectResponse: 'dspy:metrics:collected',
  /** worker → primary: send me the sum over all workers. */
  aggregateRequest: 'dspy:metrics:aggregate',
  /** primary → worker: `{ id, text }` or `{ id, error }`. */
  aggregateResponse: 'dspy:metrics:aggregated',
} as const;

export type WorkerMetrics = MetricObjectWithValues<MetricValue<string>>[];

export interface ClusterMetricsMessage {
  type: string;
  id?: number;
  metrics?: WorkerMetrics[];
  text?: string;
  error?: string;
}

/** How long a worker waits for the primary's aggregate; the primary's own collection timeout is shorter. */
export const AGGREGATE_TIMEOUT_MS = 5000;

export function isClusterMessage(message: unknown): message is ClusterMetricsMessage {
  return (
    typeof message === 'object' &&
    message !== null &&
    typeof (message as { type?: unknown }).type === 'string' &&
    (message as { type: string }).type.startsWith('dspy:metrics:')
  );
}

/** True in a worker forked by our primary (src/cluster.ts). */
export function isClusterWorker(): boolean {
  return cluster.isWorker && process.env[CLUSTER_WORKER_ENV] === '1' && typeof process.send === 'function';
}

let served: Registry | undefined;
let listening = false;
let nextId = 0;
const pending = new Map<number, { resolve(text: string): void; reject(error: Error): void }>();

function send(message: ClusterMetricsMessage): void {
  try {
    process.send?.(message);
  } catch {
    // The primary is gone; the worker exits on the IPC disconnect.
  }
}

function onMessage(message: unknown): void {
  if (!isClusterMessage(message) || message.id === undefined) return;
  if (message.type === ClusterMessage.collectRequest) {
    const id = message.id;
    const registry = served;
    if (!registry) return send({ type: ClusterMessage.collectResponse, id, error: 'no registry' });
    registry.getMetricsAsJSON().then(
      (metrics) => send({ type: ClusterMessage.collectResponse, id, metrics: [metrics as WorkerMetrics] }),
      (error: unknown) => send({ type: ClusterMessage.collectResponse, id, error: String(error) }),
    );
  } else if (message.type === ClusterMessage.aggregateResponse) {
    const request = pending.get(message.id);
    if (!request) return;
    pending.delete(message.id);
    if (typeof message.text === 'string') request.resolve(message.text);
    else request.reject(new Error(message.error ?? 'no metrics in the answer'));
  }
}

/**
 * In a cluster worker, answers the primary's collect requests with `registry` (the last one given wins: a worker
 * runs one app). Elsewhere it does nothing.
 */
export function serveWorkerMetrics(registry: Registry): void {
  if (!isClusterWorker()) return;
  served = registry;
  listen();
  send({ type: ClusterMessage.metricsReady });
}

function listen(): void {
  if (listening) return;
  listening = true;
  process.on('message', onMessage);
}

/** The Prometheus text summed over every worker of the cluster, from the primary. */
export function requestClusterMetrics(timeoutMs = AGGREGATE_TIMEOUT_MS): Promise<string> {
  listen();
  return new Promise<string>((resolve, reject) => {
    const id = nextId++;
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`the cluster primary did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    pending.set(id, {
      resolve: (text) => {
        clearTimeout(timer);
        resolve(text);
      },
      reject: (error) => {
        clearTimeout(timer);
        reject(error);
      },
    });
    send({ type: ClusterMessage.aggregateRequest, id });
  });
}
