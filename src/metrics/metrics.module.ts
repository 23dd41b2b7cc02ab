import { Global, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { observabilityConfig } from '../config/observability.config';
import { HttpMetricsInterceptor } from './http-metrics.interceptor';
import { MetricsController } from './metrics.controller';
import { MetricsService } from './metrics.service';

/**
 * Global so the program (and later the cache) can record without importing this module. The app module registers
 * the interceptor: `{ provide: APP_INTERCEPTOR, useExisting: HttpMetricsInterceptor }`.
 */
@Global()
@Module({
  imports: [ConfigModule.forFeature(observabilityConfig)],
  controllers: [MetricsController],
  providers: [MetricsService, HttpMetricsInterceptor],
  exports: [MetricsService, HttpMetricsInterceptor],
})
export class MetricsModule {}
