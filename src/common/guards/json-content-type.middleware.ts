import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { UnsupportedMediaTypeError } from '../errors/service-errors';
import { hasBody, isJsonContentType } from '../http/request-body';

/**
 * Rejects a request body that is not `application/json` with 415. Without it, express.json() silently skips a
 * `text/plain` body and the client gets a confusing 422 "question must be a string" instead. Applied by the app
 * module to the POST routes; a request without a body passes, so validation can name the missing fields.
 */
@Injectable()
export class JsonContentTypeMiddleware implements NestMiddleware {
  use(req: IncomingMessage, _res: ServerResponse, next: (error?: unknown) => void): void {
    if (hasBody(req) && !isJsonContentType(req.headers['content-type'])) {
      throw new UnsupportedMediaTypeError(req.headers['content-type']);
    }
    next();
  }
}
