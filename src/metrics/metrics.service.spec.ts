import type { PredictionRecord } from './metrics.types';
import { LATENCY_WINDOW_SIZE, MetricsService } from './metrics.service';

const prediction = (overrides: Partial<PredictionRecord> = {}): PredictionRecord => ({
  route: 'predict',
  latencySeconds: 1,
  usage: {},
  costUsd: null,
  cached: false,
  ...overrides,
});

/** 1..n in a scrambled order, so a quantile that forgot to sort gives a wrong answer. */
const scrambled = (n: number): number[] => Array.from({ length: n }, (_, i) => ((i * 37) % n) + 1);

describe('MetricsService', () => {
  let metrics: MetricsService;

  beforeEach(() => {
    metrics = new MetricsService();
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  it('starts with the seed fields at zero and the added fields empty', () => {
    expect(metrics.summary()).toEqual({
      uptime_seconds: expect.any(Number),
      total_requests: 0,
      total_errors: 0,
      error_rate: 0,
      avg_latency_seconds: 0,
      p95_latency_seconds: 0,
      total_tokens: 0,
      requests_per_second: 0,
      p50_latency_seconds: 0,
      p99_latency_seconds: 0,
      tokens_by_model: {},
      total_cost_usd: 0,
      cache_hits: 0,
      cache_hit_rate: 0,
      open_streams: 0,
      reliability: {
        shed: { queue_full: 0, queue_timeout: 0 },
        refused_draining: 0,
        in_flight: 0,
        queued: 0,
        circuit: { state: null, state_value: null, opened: 0, rejected: 0 },
        client_disconnects: { predict: 0, stream: 0, batch: 0 },
      },
    });
  });

  it('computes the average and p50/p95/p99 by the seed rule sorted[int(n*q)]', () => {
    for (const latency of scrambled(100)) metrics.recordPrediction(prediction({ latencySeconds: latency }));
    const s = metrics.summary();
    expect(s.total_requests).toBe(100);
    expect(s.avg_latency_seconds).toBe(50.5);
    expect(s.p50_latency_seconds).toBe(51);
    expect(s.p95_latency_seconds).toBe(96);
    expect(s.p99_latency_seconds).toBe(100);
  });

  it('rounds latencies to milliseconds as the seed does', () => {
    metrics.recordPrediction(prediction({ latencySeconds: 0.12345 }));
    metrics.recordPrediction(prediction({ latencySeconds: 0.2 }));
    const s = metrics.summary();
    expect(s.avg_latency_seconds).toBe(0.162);
    expect(s.p50_latency_seconds).toBe(0.2);
  });

  it('keeps memory bounded: after 100k predictions the window holds N, quantiles cover the last N, the mean all', () => {
    for (let i = 1; i <= 100_000; i += 1) metrics.recordPrediction(prediction({ latencySeconds: i }));
    expect(LATENCY_WINDOW_SIZE).toBe(10_000);
    expect(metrics.latencyWindowSize).toBe(LATENCY_WINDOW_SIZE);
    const s = metrics.summary();
    expect(s.total_requests).toBe(100_000);
    // The window holds 90001..100000.
    expect(s.p50_latency_seconds).toBe(95_001);
    expect(s.p95_latency_seconds).toBe(99_501);
    expect(s.p99_latency_seconds).toBe(99_901);
    expect(s.avg_latency_seconds).toBe(50_000.5);
  });

  it('counts errors as requests, so error_rate is errors / all predictions', () => {
    metrics.recordPrediction(prediction());
    metrics.recordPrediction(prediction());
    metrics.recordPrediction(prediction());
    metrics.recordError({ route: 'predict', code: 'timeout', model: 'openai/gpt-4o-mini' });
    const s = metrics.summary();
    expect(s.total_requests).toBe(4);
    expect(s.total_errors).toBe(1);
    expect(s.error_rate).toBe(0.25);
    // Failed predictions have no latency to report.
    expect(s.avg_latency_seconds).toBe(1);
  });

  it('rounds error_rate to four places', () => {
    metrics.recordPrediction(prediction());
    metrics.recordPrediction(prediction());
    metrics.recordError({ route: 'batch', code: 'rate_limit', model: 'm' });
    expect(metrics.summary().error_rate).toBe(0.3333);
  });

  it('sums prompt and completion tokens per model, ignoring nulls and nested details', () => {
    metrics.recordPrediction(
      prediction({
        usage: {
          'openai/gpt-4o-mini': {
            prompt_tokens: 10,
            completion_tokens: 5,
            total_tokens: 15,
            prompt_tokens_details: { cached_tokens: 4 },
          },
        },
      }),
    );
    metrics.recordPrediction(
      prediction({
        usage: {
          'openai/gpt-4o-mini': { prompt_tokens: 20, completion_tokens: 7, total_tokens: 27 },
          'openai/gpt-4o': { prompt_tokens: 3, completion_tokens: null },
        },
      }),
    );
    const s = metrics.summary();
    expect(s.tokens_by_model).toEqual({
      'openai/gpt-4o-mini': { prompt_tokens: 30, completion_tokens: 12, total_tokens: 42 },
      'openai/gpt-4o': { prompt_tokens: 3, completion_tokens: 0, total_tokens: 3 },
    });
    expect(s.total_tokens).toBe(45);
  });

  it('sums cost, skipping unknown (null) costs, and counts cache hits', () => {
    metrics.recordPrediction(prediction({ costUsd: 0.001 }));
    metrics.recordPrediction(prediction({ costUsd: 0.0025 }));
    metrics.recordPrediction(prediction({ costUsd: null, cached: true }));
    metrics.recordPrediction(prediction({ costUsd: 0, cached: true }));
    const s = metrics.summary();
    expect(s.total_cost_usd).toBe(0.0035);
    expect(s.cache_hits).toBe(2);
    expect(s.cache_hit_rate).toBe(0.5);
  });

  it('reports uptime and requests per second over the service lifetime', () => {
    jest.useFakeTimers();
    const timed = new MetricsService();
    for (let i = 0; i < 50; i += 1) timed.recordPrediction(prediction());
    jest.advanceTimersByTime(10_000);
    const s = timed.summary();
    expect(s.uptime_seconds).toBe(10);
    expect(s.requests_per_second).toBe(5);
  });

  it('tracks open streams and never goes below zero', () => {
    metrics.streamOpened();
    metrics.streamOpened();
    metrics.streamClosed();
    expect(metrics.summary().open_streams).toBe(1);
    metrics.streamClosed();
    metrics.streamClosed();
    expect(metrics.summary().open_streams).toBe(0);
  });

  describe('prometheus exposition', () => {
    it('uses the 0.0.4 text content type', () => {
      expect(metrics.prometheusContentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    });

    it('exposes every metric with its labels', async () => {
      metrics.recordPrediction(
        prediction({
          latencySeconds: 0.3,
          usage: { 'openai/gpt-4o-mini': { prompt_tokens: 100, completion_tokens: 40 } },
          costUsd: 0.5,
        }),
      );
      metrics.recordPrediction(prediction({ route: 'stream', cached: true }));
      metrics.recordError({ route: 'predict', code: 'timeout', model: 'openai/gpt-4o-mini' });
      metrics.recordLmCall('openai/gpt-4o-mini', 'ok', 0.25);
      metrics.recordLmCall('openai/gpt-4o-mini', 'cache_hit', 0.001);
      metrics.recordHttp('post', '/predict', 200, 0.31);
      metrics.streamOpened();

      const text = await metrics.prometheusText();
      const lines = text.split('\n');
      expect(lines).toEqual(
        expect.arrayContaining([
          'http_request_duration_seconds_count{method="POST",route="/predict",status="200"} 1',
          'http_request_duration_seconds_bucket{le="0.5",method="POST",route="/predict",status="200"} 1',
          'http_request_duration_seconds_bucket{le="0.25",method="POST",route="/predict",status="200"} 0',
          'predictions_total{route="predict",cached="false"} 1',
          'predictions_total{route="stream",cached="true"} 1',
          'prediction_duration_seconds_count{route="predict"} 1',
          'prediction_duration_seconds_sum{route="predict"} 0.3',
          'prediction_errors_total{route="predict",code="timeout"} 1',
          'lm_requests_total{model="openai/gpt-4o-mini",outcome="ok"} 1',
          'lm_requests_total{model="openai/gpt-4o-mini",outcome="cache_hit"} 1',
          'lm_request_duration_seconds_count{model="openai/gpt-4o-mini",outcome="ok"} 1',
          'lm_tokens_total{model="openai/gpt-4o-mini",kind="prompt"} 100',
          'lm_tokens_total{model="openai/gpt-4o-mini",kind="completion"} 40',
          'lm_errors_total{model="openai/gpt-4o-mini",code="timeout"} 1',
          'lm_cost_usd_total{model="openai/gpt-4o-mini"} 0.5',
          'open_streams 1',
          '# TYPE http_request_duration_seconds histogram',
          '# TYPE open_streams gauge',
        ]),
      );
      // Default process metrics ride along.
      expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
      expect(text).toMatch(/^nodejs_heap_size_total_bytes \d/m);
    });

    it('splits one prediction cost over its models in proportion to their tokens', async () => {
      metrics.recordPrediction(
        prediction({
          usage: {
            a: { prompt_tokens: 30, completion_tokens: 0 },
            b: { prompt_tokens: 5, completion_tokens: 5 },
          },
          costUsd: 0.4,
        }),
      );
      const cost = (model: string) => {
        const line = metrics
          .prometheusText()
          .then((text) => text.split('\n').find((l) => l.startsWith(`lm_cost_usd_total{model="${model}"} `)));
        return line.then((l) => Number(l?.split(' ')[1]));
      };
      expect(await cost('a')).toBeCloseTo(0.3, 12);
      expect(await cost('b')).toBeCloseTo(0.1, 12);
    });

    it('keeps one registry per service: two services in one process count independently', async () => {
      const other = new MetricsService();
      other.recordPrediction(prediction());
      other.recordPrediction(prediction());
      metrics.recordPrediction(prediction());
      expect((await other.prometheusText()).split('\n')).toContain(
        'predictions_total{route="predict",cached="false"} 2',
      );
      expect((await metrics.prometheusText()).split('\n')).toContain(
        'predictions_total{route="predict",cached="false"} 1',
      );
      expect(await other.prometheusText()).toMatch(/^process_resident_memory_bytes \d/m);
    });
  });
});
