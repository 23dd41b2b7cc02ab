import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { ProblemDto } from './program/dto/problem.dto';

export interface SetupOptions {
  bodyLimitBytes: number;
  version: string;
}

/** What every app instance needs, shared by main.ts and the e2e tests: body limits, API docs, shutdown hooks. */
export function setupApp(app: INestApplication, options: SetupOptions): INestApplication {
  const express = app as NestExpressApplication;
  express.disable('x-powered-by');
  express.useBodyParser('json', { limit: options.bodyLimitBytes });
  app.enableShutdownHooks();

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('DSPy Production API')
      .setDescription(
        'A production question-answering API powered by a DSPy chain-of-thought program. ' +
          'Errors are application/problem+json (RFC 9457).',
      )
      .setVersion(options.version)
      .build(),
    { extraModels: [ProblemDto] },
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
  return app;
}
