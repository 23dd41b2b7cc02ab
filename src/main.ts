import 'reflect-metadata';
import { ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { startCluster } from './cluster';
import { readPackageVersion } from './health/health.service';
import { setupApp } from './setup-app';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule, {
    bufferLogs: true,
    bodyParser: false,
  });
  app.useLogger(app.get(Logger));
  const config = app.get(ConfigService);
  setupApp(app, {
    bodyLimitBytes: config.getOrThrow<number>('program.bodyLimitBytes'),
    version: readPackageVersion(),
    shutdownHooks: false,
  });
  exitCleanlyOnSignals(app);
  const host = config.getOrThrow<string>('app.host');
  const port = config.getOrThrow<number>('app.port');
  await app.listen(port, host);
  app
    .get(Logger)
    .log(`listening on http://${host}:${port} (model ${config.get<string>('lm.model')})`, 'Bootstrap');
}

/**
 * SIGTERM/SIGINT: readiness fails and new predictions get 503 at once, in-flight requests get SHUTDOWN_GRACE_MS,
 * streams still open then end with a retryable error event and [DONE]; then the process exits 0. A second signal
 * while draining exits at once.
 */
function exitCleanlyOnSignals(app: NestExpressApplication): void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) process.exit(0);
    closing = true;
    app.get(Logger).log(`${signal} received: draining`, 'Shutdown');
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

async function main(): Promise<void> {
  // WORKERS>1: this process supervises a cluster of workers that each run bootstrap() (src/cluster.ts).
  if (startCluster()) return;
  await bootstrap();
}

main().catch((error: unknown) => {
  // A bad configuration or program state stops the process with a message that names it, not a stack trace.
  console.error(`startup failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
