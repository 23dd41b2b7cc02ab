import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { ReadinessService } from '../readiness.service';

/** `readiness` is up only between startup and drain. */
@Injectable()
export class ReadinessHealthIndicator {
  constructor(
    private readonly indicator: HealthIndicatorService,
    private readonly readiness: ReadinessService,
  ) {}

  isHealthy() {
    const check = this.indicator.check('readiness');
    const state = this.readiness.state;
    return state === 'ready' ? check.up({ state }) : check.down({ state });
  }
}
