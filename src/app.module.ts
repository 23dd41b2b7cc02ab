import { MiddlewareConsumer, Module, NestModule, RequestMethod } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import type { ConfigType } from '@nestjs/config';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { LoggerModule } from 'nestjs-pino';
import { LmCacheModule } from './cache/cache.module';
import { ProblemDetailsFilter } from './common/filters/problem-details.filter';
import { JsonContentTypeMiddleware } from './common/guards/json-content-type.middleware';
import { loggerModuleOptions } from './common/logging/logger.config';
import { createValidationPipe } from './common/pipes/validation.pipe';
import { appConfig } from './config/app.config';
import { cacheConfig } from './config/cache.config';
import { lmConfig } from './config/lm.config';
import { observabilityConfig } from './config/observability.config';
import { programConfig } from './config/program.config';
import { reliabilityConfig } from './config/reliability.config';
import { securityConfig } from './config/security.config';
import { HealthModule } from './health/health.module';
import { MetricsModule } from './metrics/metrics.module';
import { ProgramModule } from './program/program.module';
import { SecurityModule } from './security/security.module';

@Module({
  imports: [
    // Every namespace validates its own variables at boot; a bad value stops the process naming it.
    ConfigModule.forRoot({
      isGlobal: true,
      cache: true,
      load: [
        appConfig,
        lmConfig,
        programConfig,
        observabilityConfig,
        cacheConfig,
        securityConfig,
        reliabilityConfig,
      ],
    }),
    LoggerModule.forRootAsync({
      inject: [observabilityConfig.KEY],
      useFactory: (obs: ConfigType<typeof observabilityConfig>) => loggerModuleOptions(obs),
    }),
    SecurityModule,
    MetricsModule,
    LmCacheModule,
    ProgramModule,
    HealthModule.register({ imports: [ProgramModule] }),
  ],
  providers: [
    { provide: APP_FILTER, useClass: ProblemDetailsFilter },
    { provide: APP_PIPE, useFactory: createValidationPipe },
  ],
})
export class AppModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(JsonContentTypeMiddleware).forRoutes({ path: '*path', method: RequestMethod.POST });
  }
}
