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
  });
  const host = config.getOrThrow<string>('app.host');
  const port = config.getOrThrow<number>('app.port');
  await app.listen(port, host);
  app
    .get(Logger)
    .log(`listening on http://${host}:${port} (model ${config.get<string>('lm.model')})`, 'Bootstrap');
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
