import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ServiceUnavailableError } from '../common/errors/service-errors';
import type { Usage } from '../dspy';
import { isClusterWorker, requestClusterMetrics, serveWorkerMetrics } from './cluster-metrics';
import { LatencyWindow } from './latency-window';
import type { PredictionErrorRecord, PredictionRecord } from './metrics.types';
import { ReliabilityMetrics } from './reliability-metrics';

/** How many recent prediction latencies the quantiles are computed over. */
export const LATENCY_WINDOW_SIZE = 10_000;

export type LmCallOutcome = 'ok' | 'error' | 'cache_hit' | 'aborted';

export interface ModelTokens {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** `GET /metrics`: the seed's fields, same names and rounding, plus quantiles, tokens per model, cost and cache. */
export interface MetricsSummary {
  uptime_seconds: number;
  total_requests: number;
  total_errors: number;
  error_rate: number;
  avg_latency_seconds: number;
  p95_latency_seconds: number;
  total_tokens: number;
  requests_per_second: number;
  p50_latency_seconds: number;
  p99_latency_seconds: number;
  tokens_by_model: Record<string, ModelTokens>;
  total_cost_usd: number;
  cache_hits: number;
  cache_hit_rate: number;
  open_streams: number;
  /** Sections other modules contribute (the LM cache's per-tier hits and misses). */
  [section: string]: unknown;
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120];

/**
 * Process-wide metrics (CPU, memory, event loop, GC) are collected once: each `collectDefaultMetrics` call starts an
 * event-loop monitor and a GC observer that are never stopped, so one per app instance would leak in test suites
 * that build many apps. Their metric objects are registered into every service's own registry instead.
 */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

const round = (value: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
};

const tokenCount = (usage: Usage, key: string): number => {
  const v = usage[key];
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
};

/**
 * Counters for the JSON summary and the Prometheus exposition. Every structure is bounded: counts are plain
 * numbers, latencies live in a fixed-size window, and Prometheus labels come from closed sets (routes, models,
 * error codes) — never from request data.
 *
 * `total_requests` counts finished predictions, successful or failed, so `error_rate` is errors / requests and
 * stays within [0, 1] (the seed divided errors by successes). Latency figures describe successful predictions;
 * the average is exact over all of them, the quantiles cover the last {@link LATENCY_WINDOW_SIZE}.
 */
@Injectable()
export class MetricsService {
  /** A registry of its own (not prom-client's global one), so many apps can live in one process. */
  readonly registry = new Registry();
  /** Load shedding, draining, circuit breaker and client disconnects (the `reliability` section). */
  readonly reliability: ReliabilityMetrics;

  private readonly startedAt = process.hrtime.bigint();
  private readonly latencies: LatencyWindow;
  private successes = 0;
  private errors = 0;
  private latencySum = 0;
  private cacheHits = 0;
  private costUsd = 0;
  private streams = 0;
  private readonly tokens = new Map<string, ModelTokens>();

  private readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  private readonly predictions: Counter<'route' | 'cached'>;
  private readonly predictionDuration: Histogram<'route'>;
  private readonly predictionErrors: Counter<'route' | 'code'>;
  private readonly lmRequests: Counter<'model' | 'outcome'>;
  private readonly lmDuration: Histogram<'model' | 'outcome'>;
  private readonly lmTokens: Counter<'model' | 'kind'>;
  private readonly lmErrors: Counter<'model' | 'code'>;
  private readonly lmCost: Counter<'model'>;
  private readonly openStreams: Gauge;

  constructor() {
    this.latencies = new LatencyWindow(LATENCY_WINDOW_SIZE);
    const registers = [this.registry];
    this.httpDuration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by route template and status (health and metrics scrapes excluded)',
      labelNames: ['method', 'route', 'status'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.predictions = new Counter({
      name: 'predictions_total',
      help: 'Successful predictions by route and whether the LM cache answered',
      labelNames: ['route', 'cached'],
      registers,
    });
    this.predictionDuration = new Histogram({
      name: 'prediction_duration_seconds',
      help: 'Duration of successful predictions',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.predictionErrors = new Counter({
      name: 'prediction_errors_total',
      help: 'Failed predictions by route and error code',
      labelNames: ['route', 'code'],
      registers,
    });
    this.lmRequests = new Counter({
      name: 'lm_requests_total',
      help: 'LM calls by model and outcome',
      labelNames: ['model', 'outcome'],
      registers,
    });
    this.lmDuration = new Histogram({
      name: 'lm_request_duration_seconds',
      help: 'LM call duration by model and outcome',
      labelNames: ['model', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.lmTokens = new Counter({
      name: 'lm_tokens_total',
      help: 'Tokens billed by the LM, by model and kind (prompt|completion)',
      labelNames: ['model', 'kind'],
      registers,
    });
    this.lmErrors = new Counter({
      name: 'lm_errors_total',
      help: 'Failed predictions by model and error code',
      labelNames: ['model', 'code'],
      registers,
    });
    this.lmCost = new Counter({
      name: 'lm_cost_usd_total',
      help: 'Estimated LM spend in US dollars by model',
      labelNames: ['model'],
      registers,
    });
    this.openStreams = new Gauge({
      name: 'open_streams',
      help: 'Server-sent event streams currently open',
      registers,
    });
    this.reliability = new ReliabilityMetrics(this.registry);
    this.addSummarySection('reliability', () => this.reliability.summary());
    const shared = processMetrics();
    for (const { name } of shared.getMetricsAsArray()) {
      const metric = shared.getSingleMetric(name);
      if (metric) this.registry.registerMetric(metric);
    }
    // A WORKERS>1 cluster worker answers the primary's collect requests with this registry (no-op otherwise).
    serveWorkerMetrics(this.registry);
  }

  recordPrediction(r: PredictionRecord): void {
    const latency = Number.isFinite(r.latencySeconds) && r.latencySeconds >= 0 ? r.latencySeconds : 0;
    this.successes += 1;
    this.latencySum += latency;
    this.latencies.add(latency);
    if (r.cached) this.cacheHits += 1;
    this.predictions.inc({ route: r.route, cached: String(r.cached) });
    this.predictionDuration.observe({ route: r.route }, latency);
    this.recordUsage(r.usage, r.costUsd);
  }

  /**
   * Tokens and cost billed by the upstream. Called for every prediction, and on its own for requests that failed
   * or whose client left after some calls were billed: tokens spent are counted whether or not anyone got an answer.
   */
  recordUsage(usageByModel: Record<string, Usage>, costUsd: number | null): void {
    const tokensByModel: [string, number][] = [];
    for (const [model, usage] of Object.entries(usageByModel)) {
      const prompt = tokenCount(usage, 'prompt_tokens');
      const completion = tokenCount(usage, 'completion_tokens');
      const t = this.tokens.get(model) ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
      t.prompt_tokens += prompt;
      t.completion_tokens += completion;
      t.total_tokens += prompt + completion;
      this.tokens.set(model, t);
      if (prompt > 0) this.lmTokens.inc({ model, kind: 'prompt' }, prompt);
      if (completion > 0) this.lmTokens.inc({ model, kind: 'completion' }, completion);
      tokensByModel.push([model, prompt + completion]);
    }

    const cost = costUsd;
    if (cost !== null && Number.isFinite(cost) && cost > 0) {
      this.costUsd += cost;
      this.attributeCost(cost, tokensByModel);
    }
  }

  recordError(e: PredictionErrorRecord): void {
    this.errors += 1;
    this.predictionErrors.inc({ route: e.route, code: e.code });
    this.lmErrors.inc({ model: e.model, code: e.code });
  }

  recordLmCall(model: string, outcome: LmCallOutcome, seconds: number): void {
    this.lmRequests.inc({ model, outcome });
    if (Number.isFinite(seconds) && seconds >= 0) this.lmDuration.observe({ model, outcome }, seconds);
  }

  streamOpened(): void {
    this.streams += 1;
    this.openStreams.set(this.streams);
  }

  streamClosed(): void {
    // A close without a matching open (a double teardown) must not drive the gauge negative.
    this.streams = Math.max(0, this.streams - 1);
    this.openStreams.set(this.streams);
  }

  recordHttp(method: string, route: string, status: number | string, seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) return;
    this.httpDuration.observe({ method: method.toUpperCase(), route, status: String(status) }, seconds);
  }

  private readonly sections = new Map<string, () => unknown>();

  /** Let another module add a section to the JSON summary (e.g. `cache`), computed at read time. */
  addSummarySection(name: string, read: () => unknown): void {
    this.sections.set(name, read);
  }

  summary(): MetricsSummary {
    const extra = Object.fromEntries([...this.sections].map(([name, read]) => [name, read()]));
    const uptime = Number(process.hrtime.bigint() - this.startedAt) / 1e9;
    const total = this.successes + this.errors;
    const [p50, p95, p99] = this.latencies.quantiles([0.5, 0.95, 0.99] as const);
    const tokensByModel: Record<string, ModelTokens> = {};
    let totalTokens = 0;
    for (const [model, t] of this.tokens) {
      tokensByModel[model] = { ...t };
      totalTokens += t.total_tokens;
    }
    return {
      uptime_seconds: round(uptime, 1),
      total_requests: total,
      total_errors: this.errors,
      error_rate: round(this.errors / Math.max(total, 1), 4),
      avg_latency_seconds: round(this.latencySum / Math.max(this.successes, 1), 3),
      p95_latency_seconds: round(p95, 3),
      total_tokens: totalTokens,
      requests_per_second: round(total / Math.max(uptime, 1), 2),
      p50_latency_seconds: round(p50, 3),
      p99_latency_seconds: round(p99, 3),
      tokens_by_model: tokensByModel,
      total_cost_usd: round(this.costUsd, 6),
      cache_hits: this.cacheHits,
      cache_hit_rate: round(this.cacheHits / Math.max(this.successes, 1), 4),
      open_streams: this.streams,
      ...extra,
    };
  }

  /** How many latencies the quantile window holds (bounded by {@link LATENCY_WINDOW_SIZE}). */
  get latencyWindowSize(): number {
    return this.latencies.size;
  }

  /**
   * The Prometheus text exposition of this service's registry (process metrics included); in a `WORKERS>1`
   * cluster worker, the sum over every worker of the cluster. A scrape that cannot see every worker fails (503)
   * rather than report a partial sum that Prometheus would read as counter resets.
   */
  async prometheusText(): Promise<string> {
    if (!isClusterWorker()) return this.registry.metrics();
    try {
      return await requestClusterMetrics();
    } catch (error: unknown) {
      throw new ServiceUnavailableError(
        `Cluster metrics are unavailable: ${error instanceof Error ? error.message : String(error)}`,
        1,
      );
    }
  }

  /** `text/plain; version=0.0.4; charset=utf-8`. */
  get prometheusContentType(): string {
    return this.registry.contentType;
  }

  /**
   * A prediction's cost is one figure; split it over the models that billed tokens, in proportion to their tokens
   * (all of it to the one model in the usual single-model case). Cost without usage goes to `unknown`.
   */
  private attributeCost(cost: number, tokensByModel: [string, number][]): void {
    const tokens = tokensByModel.reduce((sum, [, n]) => sum + n, 0);
    if (tokens === 0) {
      const models = tokensByModel.length > 0 ? tokensByModel.map(([m]) => m) : ['unknown'];
      for (const model of models) this.lmCost.inc({ model }, cost / models.length);
      return;
    }
    for (const [model, n] of tokensByModel) {
      if (n > 0) this.lmCost.inc({ model }, (cost * n) / tokens);
    }
  }
}
