import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { PROGRAM_STATUS, type ProgramStatusProvider } from '../../program/program-status';

/**
 * Whether a language model is configured. It reads configuration only and never calls the upstream: a probe that
 * spends tokens, or fails every replica when the provider blips, does more harm than good.
 */
@Injectable()
export class LmHealthIndicator {
  constructor(
    private readonly indicator: HealthIndicatorService,
    @Inject(PROGRAM_STATUS) private readonly program: ProgramStatusProvider,
  ) {}

  isHealthy() {
    const check = this.indicator.check('lm');
    try {
      const { model, lmConfigured, lmProblem } = this.program.status();
      if (lmConfigured) return check.up({ model, configured: true });
      return check.down({
        model,
        configured: false,
        problem: lmProblem ?? 'The language model is not configured.',
      });
    } catch (error: unknown) {
      // A thrown indicator becomes a 500; a broken status source is a down dependency.
      const problem = error instanceof Error ? error.message : String(error);
      return check.down({ configured: false, problem });
    }
  }
}
