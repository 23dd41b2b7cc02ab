import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { ConfigService } from '@nestjs/config';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import helmet from 'helmet';
import type { Server } from 'node:http';
import { answerClientError } from './common/http/client-error';
import { requestIdOf } from './common/logging/logger.config';
import type { SecurityConfig } from './config/security.config';
import { ProblemDto } from './program/dto/problem.dto';

export interface SetupOptions {
  bodyLimitBytes: number;
  version: string;
  /**
   * Nest's own signal listeners (default true). Nest re-raises the signal after closing, so the process would
   * end by signal; main.ts passes false and closes the app itself to exit 0 after draining.
   */
  shutdownHooks?: boolean;
}

/**
 * What every app instance needs, shared by main.ts and the e2e tests: security headers, CORS, body limits, API
 * docs, shutdown hooks.
 */
export function setupApp(app: INestApplication, options: SetupOptions): INestApplication {
  const express = app as NestExpressApplication;
  express.disable('x-powered-by');
  // Requests Node's parser refuses (e.g. a GET question past the 16 KiB header limit) get problem+json too.
  (app.getHttpServer() as Server).on('clientError', answerClientError);
  // The request id on every response, /docs included (mounted below, before Nest's middleware and pino-http,
  // which reuses this id).
  express.use(
    (req: Parameters<typeof requestIdOf>[0], res: Parameters<typeof requestIdOf>[1], next: () => void) => {
      requestIdOf(req, res);
      next();
    },
  );
  const security = app.get(ConfigService).getOrThrow<SecurityConfig>('security');
  if (security.trustProxy > 0) express.set('trust proxy', security.trustProxy);
  // Helmet's defaults, with a CSP Swagger UI at /docs works under (its script and CSS are served from 'self',
  // it draws data: images) and without upgrade-insecure-requests, which would break /docs over plain HTTP.
  express.use(
    helmet({
      contentSecurityPolicy: {
        directives: {
          'img-src': ["'self'", 'data:'],
          'upgrade-insecure-requests': null,
        },
      },
    }),
  );
  // CORS only for the listed origins; credentials only when asked for, and never with '*' (config refuses it).
  if (security.corsOrigins.length > 0) {
    const any = security.corsOrigins.includes('*');
    app.enableCors({
      origin: any ? '*' : security.corsOrigins,
      credentials: security.corsCredentials,
      allowedHeaders: ['Authorization', 'Content-Type', 'Cache-Control', 'x-api-key', 'x-request-id'],
      exposedHeaders: ['Retry-After', 'x-request-id'],
      maxAge: 600,
    });
  }
  express.useBodyParser('json', { limit: options.bodyLimitBytes });
  if (options.shutdownHooks !== false) app.enableShutdownHooks();

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('DSPy Production API')
      .setDescription(
        'A production question-answering API powered by a DSPy chain-of-thought program. ' +
          'Errors are application/problem+json (RFC 9457).',
      )
      .setVersion(options.version)
      // The Authorize button of Swagger UI; either scheme is accepted when API_KEYS is set.
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'One of API_KEYS' }, 'bearer')
      .addApiKey(
        { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'One of API_KEYS' },
        'x-api-key',
      )
      .addSecurityRequirements('bearer')
      .addSecurityRequirements('x-api-key')
      .build(),
    { extraModels: [ProblemDto] },
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
  return app;
}
