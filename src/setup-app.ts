import type { INestApplication } from '@nestjs/common';

/** What every app instance needs, shared by main.ts and the e2e tests. */
export function setupApp(app: INestApplication): INestApplication {
  app.enableShutdownHooks();
  return app;
}
