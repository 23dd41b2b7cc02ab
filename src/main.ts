import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import { setupApp } from './setup-app';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(AppModule);
  setupApp(app);
  const config = app.get(ConfigService);
  const host = config.getOrThrow<string>('app.host');
  const port = config.getOrThrow<number>('app.port');
  await app.listen(port, host);
  Logger.log(`listening on http://${host}:${port}`, 'Bootstrap');
}

bootstrap().catch((error: unknown) => {
  // A bad configuration or program state stops the process with a message that names it.
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
