import { Logger as NestLogger, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Logger, PARAMS_PROVIDER_TOKEN } from 'nestjs-pino';
import { __resetOutOfContextForTests } from 'nestjs-pino/PinoLogger';
import type { Server } from 'node:http';
import type { Writable } from 'node:stream';
import { AppModule } from '../../src/app.module';
import { loggerModuleOptions, type LoggerObservability } from '../../src/common/logging/logger.config';
import { observabilityConfig } from '../../src/config/observability.config';
import { setupApp } from '../../src/setup-app';
import { FakeOpenAI, FakeOpenAIOptions, startFakeOpenAI } from './fake-openai';

export interface TestApp {
  app: INestApplication;
  server: Server;
  upstream: FakeOpenAI;
  close(): Promise<void>;
}

/** Variables every test app starts from: the fake upstream, no retries, quiet logs. */
const BASE_ENV: Record<string, string> = {
  OPENAI_API_KEY: 'sk-test',
  DSPY_MODEL: 'openai/gpt-4o-mini',
  LM_MAX_RETRIES: '0',
  LM_TIMEOUT_MS: '5000',
  LOG_LEVEL: 'silent',
  // Suites opt into the disk and Redis tiers (with their own directory / namespace) where they test them.
  CACHE_DISK_ENABLED: 'false',
  // Suites that test the circuit breaker turn it on; elsewhere a run of upstream failures must stay 502s.
  CIRCUIT_FAILURE_THRESHOLD: '0',
};

const MANAGED = [
  ...Object.keys(BASE_ENV),
  'OPENAI_BASE_URL',
  'PROGRAM_STATE_PATH',
  'ENABLE_STREAMING',
  'ENABLE_METRICS',
  'STREAM_FIELDS',
  'STREAM_HEARTBEAT_MS',
  'BATCH_MAX_ITEMS',
  'BATCH_CONCURRENCY',
  'BODY_LIMIT_BYTES',
  'TRACK_USAGE',
  'LM_PRICES_JSON',
  'CACHE_MEMORY_ENABLED',
  'CACHE_MEMORY_ENTRIES',
  'CACHE_DISK_ENABLED',
  'CACHE_DISK_SIZE',
  'CACHE_DIR',
  'CACHE_TTL_MS',
  'REDIS_URL',
  'LOG_PROMPTS',
  'REDIS_CONNECT_TIMEOUT_MS',
  'REDIS_COMMAND_TIMEOUT_MS',
  'MODELS_DIR',
  'LOCAL_MODEL_DOWNLOAD',
  'LOCAL_SEQUENCES',
  'LOCAL_CONTEXT_SIZE',
  'LOCAL_MAX_FIELD_CHARS',
  'LOCAL_THREADS',
  'API_KEYS',
  'METRICS_REQUIRE_KEY',
  'CORS_ORIGINS',
  'CORS_CREDENTIALS',
  'RATE_LIMIT',
  'RATE_LIMIT_TTL_MS',
  'TRUST_PROXY_HOPS',
  'MAX_CONCURRENT_PREDICTIONS',
  'PREDICTION_QUEUE_SIZE',
  'PREDICTION_QUEUE_TIMEOUT_MS',
  'OVERLOAD_RETRY_AFTER_S',
  'SHUTDOWN_GRACE_MS',
  'CIRCUIT_OPEN_MS',
  'LM_CONNECT_TIMEOUT_MS',
  'LM_FIRST_TOKEN_TIMEOUT_MS',
  'LM_STREAM_IDLE_TIMEOUT_MS',
  'REQUEST_DEADLINE_MS',
];

export interface TestAppOptions {
  /**
   * Capture the app's real log output here: the app's own logger params (loggerModuleOptions with its
   * observability config) with this stream as the destination, and Nest's logger routed through pino as main.ts
   * does. Without it the app logs nothing.
   */
  logTo?: Writable;
}

/**
 * The whole AppModule over real HTTP, its LM pointed at a fake OpenAI-compatible upstream on loopback through
 * the real `openai` SDK. `env` overrides variables for this app only (undefined removes one).
 */
export async function createTestApp(
  env: Record<string, string | undefined> = {},
  upstreamOptions: FakeOpenAIOptions = {},
  { logTo }: TestAppOptions = {},
): Promise<TestApp> {
  const upstream = await startFakeOpenAI(upstreamOptions);
  const saved = Object.fromEntries(MANAGED.map((k) => [k, process.env[k]]));
  for (const k of MANAGED) delete process.env[k];
  Object.assign(process.env, BASE_ENV, { OPENAI_BASE_URL: upstream.url });
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    let testing = Test.createTestingModule({ imports: [AppModule] });
    if (logTo) {
      // main.ts's NestFactory.create({ bufferLogs: true }) holds logs from module construction on until
      // useLogger(); a testing module is built before its app, so hold them from here. nestjs-pino keeps the first
      // app's logger process-wide for lines logged outside a request: this app's lines must reach `logTo`.
      NestLogger.attachBuffer();
      __resetOutOfContextForTests();
      testing = testing.overrideProvider(PARAMS_PROVIDER_TOKEN).useFactory({
        factory: (obs: LoggerObservability) => loggerModuleOptions(obs, logTo),
        inject: [observabilityConfig.KEY],
      });
    }
    const moduleRef = await testing.compile();
    const app = logTo
      ? moduleRef.createNestApplication({ bodyParser: false, bufferLogs: true })
      : moduleRef.createNestApplication({ bodyParser: false, logger: false });
    if (logTo) app.useLogger(app.get(Logger));
    setupApp(app, { bodyLimitBytes: Number(process.env.BODY_LIMIT_BYTES ?? 1_048_576), version: 'test' });
    await app.init();
    await app.listen(0, '127.0.0.1');
    return {
      app,
      server: app.getHttpServer() as Server,
      upstream,
      close: async () => {
        await app.close();
        await upstream.close();
      },
    };
  } finally {
    if (logTo) NestLogger.detachBuffer();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
