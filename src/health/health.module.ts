import { DynamicModule, Module, type ModuleMetadata } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health.controller';
import { HealthService } from './health.service';
import { LmHealthIndicator } from './indicators/lm.health';
import { LocalModelHealthIndicator } from './indicators/local-model.health';
import { ReadinessHealthIndicator } from './indicators/readiness.health';
import { ReadinessService } from './readiness.service';

export interface HealthModuleOptions {
  /** Modules that export `PROGRAM_STATUS`, when it is not provided globally. */
  imports?: ModuleMetadata['imports'];
}

/**
 * Probes and the `/health` summary. It needs `PROGRAM_STATUS`; it does not import the program module itself:
 * either that token is global, or `HealthModule.register({ imports: [ModuleThatExportsIt] })` hands it in.
 */
@Module({
  imports: [TerminusModule],
  controllers: [HealthController],
  providers: [
    ReadinessService,
    HealthService,
    LmHealthIndicator,
    LocalModelHealthIndicator,
    ReadinessHealthIndicator,
  ],
  exports: [ReadinessService],
})
export class HealthModule {
  static register(options: HealthModuleOptions = {}): DynamicModule {
    return { module: HealthModule, imports: [...(options.imports ?? [])] };
  }
}
