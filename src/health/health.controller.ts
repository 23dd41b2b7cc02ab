import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { HealthService, type HealthSummary } from './health.service';
import { LocalModelHealthIndicator } from './indicators/local-model.health';
import { ReadinessHealthIndicator } from './indicators/readiness.health';

const SUMMARY_EXAMPLE: HealthSummary = {
  status: 'healthy',
  model: 'openai/gpt-4o-mini',
  optimized: true,
  streaming: true,
  version: '0.1.0',
  uptime_seconds: 3600.2,
  dependencies: { lm: { status: 'up', model: 'openai/gpt-4o-mini', configured: true } },
};

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly summaryService: HealthService,
    private readonly readiness: ReadinessHealthIndicator,
    private readonly localModel: LocalModelHealthIndicator,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Service summary: model, program state, version, uptime and dependency status' })
  @ApiOkResponse({
    description: 'Always 200; `status` is `degraded` when a dependency is down',
    schema: { type: 'object', example: SUMMARY_EXAMPLE },
  })
  summary(): Promise<HealthSummary> {
    return this.summaryService.summary();
  }

  /** Liveness: the process answers. It checks no dependency, so an upstream outage never restarts pods. */
  @Get('live')
  @HealthCheck()
  @ApiOperation({ summary: 'Liveness probe (process only)' })
  live() {
    return this.health.check([]);
  }

  /**
   * Readiness: 503 while starting and while draining for shutdown, and — when the service runs an in-process
   * local model — until that model is loaded, so no traffic is routed to a replica that can only answer 503.
   */
  @Get('ready')
  @HealthCheck()
  @ApiOperation({ summary: 'Readiness probe (503 during startup, drain, and while a local model loads)' })
  ready() {
    const local = this.localModel.isHealthy();
    return this.health.check([() => this.readiness.isHealthy(), ...(local ? [() => local] : [])]);
  }
}
