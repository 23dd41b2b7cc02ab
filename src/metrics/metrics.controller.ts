import { Controller, Get, Header, Inject, NotFoundException } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import { Registry } from 'prom-client';
import { observabilityConfig } from '../config/observability.config';
import { MetricsService, type MetricsSummary } from './metrics.service';

const SUMMARY_EXAMPLE: MetricsSummary = {
  uptime_seconds: 3600.2,
  total_requests: 1250,
  total_errors: 5,
  error_rate: 0.004,
  avg_latency_seconds: 1.234,
  p95_latency_seconds: 2.871,
  total_tokens: 612340,
  requests_per_second: 0.35,
  p50_latency_seconds: 1.102,
  p99_latency_seconds: 4.015,
  tokens_by_model: {
    'openai/gpt-4o-mini': { prompt_tokens: 480210, completion_tokens: 132130, total_tokens: 612340 },
  },
  total_cost_usd: 0.151309,
  cache_hits: 310,
  cache_hit_rate: 0.249,
  open_streams: 2,
  reliability: {
    shed: { queue_full: 12, queue_timeout: 3 },
    refused_draining: 0,
    in_flight: 7,
    queued: 0,
    circuit: { state: 'closed', state_value: 0, opened: 1, rejected: 40 },
    client_disconnects: { predict: 4, stream: 19, batch: 0 },
  },
};

const PROMETHEUS_EXAMPLE = [
  '# HELP predictions_total Successful predictions by route and whether the LM cache answered',
  '# TYPE predictions_total counter',
  'predictions_total{route="predict",cached="false"} 935',
  'predictions_total{route="predict",cached="true"} 310',
  '',
].join('\n');

@ApiTags('metrics')
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: MetricsService,
    @Inject(observabilityConfig.KEY) private readonly cfg: ConfigType<typeof observabilityConfig>,
  ) {}

  @Get()
  @ApiOperation({
    summary: 'Service metrics as JSON (the seed summary plus quantiles, tokens, cost and cache)',
  })
  @ApiOkResponse({ description: 'Metrics summary', schema: { type: 'object', example: SUMMARY_EXAMPLE } })
  @ApiNotFoundResponse({ description: 'Metrics are disabled (ENABLE_METRICS=false)' })
  summary(): MetricsSummary {
    this.assertEnabled();
    return this.metrics.summary();
  }

  @Get('prometheus')
  @Header('Content-Type', Registry.PROMETHEUS_CONTENT_TYPE)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({ summary: 'Prometheus text exposition (format 0.0.4)' })
  @ApiProduces(Registry.PROMETHEUS_CONTENT_TYPE)
  @ApiOkResponse({
    description: 'Prometheus metrics',
    content: {
      [Registry.PROMETHEUS_CONTENT_TYPE]: { schema: { type: 'string', example: PROMETHEUS_EXAMPLE } },
    },
  })
  @ApiNotFoundResponse({ description: 'Metrics are disabled (ENABLE_METRICS=false)' })
  prometheus(): Promise<string> {
    this.assertEnabled();
    return this.metrics.prometheusText();
  }

  private assertEnabled(): void {
    if (!this.cfg.enableMetrics) throw new NotFoundException('Metrics are disabled');
  }
}
