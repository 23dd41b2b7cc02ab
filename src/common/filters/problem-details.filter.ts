import {
  BadRequestException,
  Catch,
  Inject,
  Injectable,
  Optional,
  type ArgumentsHost,
  type ExceptionFilter,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PinoLogger } from 'nestjs-pino';
import { lmConfig } from '../../config/lm.config';
import { securityConfig } from '../../config/security.config';
import { AdapterParseError, DSPyError } from '../../dspy';
import {
  describeError,
  INTERNAL_ERROR_CODE,
  invalidJsonProblem,
  problemType,
  type ProblemInfo,
} from '../errors/error-table';
import { hasBody, isJsonContentType } from '../http/request-body';
import { requestIdOf } from '../logging/logger.config';
import { redactSecrets } from '../logging/redact-secrets';

type HttpRequest = IncomingMessage & { body?: unknown; log?: unknown };

/** RFC 9457 problem details, as every error response of this API is shaped. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  request_id: string;
  errors?: { field: string; message: string }[];
  [extension: string]: unknown;
}

/**
 * Nest turns body-parser's SyntaxError into a bare BadRequestException and drops the original. What identifies
 * it is the request itself: it sent a JSON body, and the parser left none behind.
 */
function isUnparsedJsonBody(req: HttpRequest): boolean {
  return req.body === undefined && hasBody(req) && isJsonContentType(req.headers['content-type']);
}

/**
 * What operators need to know about a known failure, minus anything the LM wrote (it may quote the prompt) and
 * any credential the upstream's message quotes back (`secrets`: the configured keys).
 */
function errorSummary(exception: unknown, secrets: readonly string[]): Record<string, unknown> {
  if (exception instanceof DSPyError) {
    return {
      type: exception.name,
      code: exception.code,
      model: exception.model,
      provider: exception.provider,
      provider_code: exception.providerCode,
      upstream_status: exception.status,
      upstream_request_id: exception.requestId,
      ...(exception instanceof AdapterParseError
        ? {}
        : { message: redactSecrets(exception.rawMessage, secrets) }),
    };
  }
  return { type: exception instanceof Error ? exception.name : typeof exception };
}

/**
 * The one global exception filter: every error becomes `application/problem+json` with the status, code and
 * safe detail the error table gives it. Unexpected errors are logged with their stack and answered with a
 * generic 500; nothing else about them leaves the process.
 */
@Catch()
@Injectable()
export class ProblemDetailsFilter implements ExceptionFilter {
  /** The upstream key and the API keys, kept out of upstream messages before they are logged. */
  private readonly secrets: string[];

  constructor(
    private readonly logger: PinoLogger,
    @Optional() @Inject(lmConfig.KEY) lm?: ConfigType<typeof lmConfig>,
    @Optional() @Inject(securityConfig.KEY) security?: ConfigType<typeof securityConfig>,
  ) {
    this.logger.setContext(ProblemDetailsFilter.name);
    this.secrets = [lm?.apiKey ?? '', ...(security?.apiKeys ?? [])].filter(Boolean);
  }

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const req = http.getRequest<HttpRequest>();
    const res = http.getResponse<ServerResponse>();

    const problem =
      exception instanceof BadRequestException && isUnparsedJsonBody(req)
        ? invalidJsonProblem()
        : describeError(exception);
    const requestId = requestIdOf(req, res);
    this.log(exception, problem, req, requestId, res.headersSent);

    // An SSE stream has begun: it reports the failure as its own `error` event and ends itself; a status line
    // is no longer possible, and ending the response here could cut the stream short.
    if (res.headersSent) return;

    const body: ProblemDetails = {
      type: problemType(problem.code),
      title: problem.title,
      status: problem.status,
      detail: problem.detail,
      code: problem.code,
      request_id: requestId,
      ...(problem.errors ? { errors: problem.errors } : {}),
      // Extension names come from the same table and never collide with the members above.
      ...problem.extensions,
    };
    res.statusCode = problem.status;
    res.setHeader('Content-Type', 'application/problem+json; charset=utf-8');
    if (problem.retryAfter !== undefined) res.setHeader('Retry-After', String(problem.retryAfter));
    res.end(JSON.stringify(body));
  }

  private log(
    exception: unknown,
    problem: ProblemInfo,
    req: HttpRequest,
    requestId: string,
    headersSent: boolean,
  ): void {
    const fields: Record<string, unknown> = { code: problem.code, status: problem.status };
    // Requests rejected before pino-http ran (body-parser errors) have no request-bound logger to add the id.
    if (req.log === undefined) fields.request_id = requestId;
    if (headersSent) fields.headers_sent = true;

    if (problem.code === INTERNAL_ERROR_CODE) {
      this.logger.error({ ...fields, err: exception }, 'Unhandled error');
    } else if (problem.status >= 500 || problem.status === 429) {
      this.logger.warn({ ...fields, error: errorSummary(exception, this.secrets) }, 'Request failed');
    } else {
      this.logger.debug({ ...fields, error: errorSummary(exception, this.secrets) }, 'Request rejected');
    }
  }
}
