import { registerAs } from '@nestjs/config';
import { readEnv } from './env';

/** Logs and metrics. */
export const observabilityConfig = registerAs('observability', () => {
  const env = readEnv('observability');
  return {
    enableMetrics: env.bool('ENABLE_METRICS', true),
    logLevel: env.oneOf('LOG_LEVEL', 'info', [
      'fatal',
      'error',
      'warn',
      'info',
      'debug',
      'trace',
      'silent',
    ] as const),
    /** Prompts and answers appear in logs only when this is true. */
    logPrompts: env.bool('LOG_PROMPTS', false),
  };
});

export type ObservabilityConfig = ReturnType<typeof observabilityConfig>;
