import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Params } from 'nestjs-pino';
import pino, { type DestinationStream, type LevelWithSilent } from 'pino';
import type { Options } from 'pino-http';

export const REQUEST_ID_HEADER = 'x-request-id';

/** What an incoming id may look like: short, and nothing that could forge log lines or headers. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** Routes scraped by probes and Prometheus, or browsed as docs: logging every hit would drown real traffic. */
const QUIET_PATH_PREFIXES = ['/health', '/metrics', '/docs'];

const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers.cookie',
  'apiKey',
  'api_key',
  '*.apiKey',
  '*.api_key',
  '*.*.apiKey',
  '*.*.api_key',
];

type RequestWithId = IncomingMessage & { id?: unknown };

/**
 * pino-http's `genReqId`: keeps the caller's `x-request-id` when it is well formed, so one id follows a request
 * across services; otherwise a fresh UUID. Echoed on the response so clients can quote it in bug reports.
 */
export function genReqId(req: IncomingMessage, res: ServerResponse): string {
  const incoming = req.headers[REQUEST_ID_HEADER];
  const id = typeof incoming === 'string' && REQUEST_ID_PATTERN.test(incoming) ? incoming : randomUUID();
  if (!res.headersSent) res.setHeader(REQUEST_ID_HEADER, id);
  return id;
}

/**
 * The request's id. pino-http assigns it, but body-parser runs before any Nest middleware, so a request rejected
 * as bad JSON reaches the error filter without one; it gets one here (and on the response, when `res` is given),
 * stored on the request so every later caller sees the same id.
 */
export function requestIdOf(req: IncomingMessage, res?: ServerResponse): string {
  const r = req as RequestWithId;
  if (typeof r.id === 'string' || typeof r.id === 'number') return String(r.id);
  const id = res ? genReqId(req, res) : randomUUID();
  r.id = id;
  return id;
}

function pathOf(url: string | undefined): string {
  return (url ?? '').split('?', 1)[0];
}

export interface LoggerObservability {
  logLevel: LevelWithSilent;
  /** Whether questions and answers may reach the logs (LOG_PROMPTS). */
  logPrompts: boolean;
}

/** The fields pino-std-serializers extracts from a request. */
interface SerializedRequest {
  id: unknown;
  method: string;
  url: string;
  remoteAddress?: string;
}

/**
 * nestjs-pino parameters: JSON lines at `obs.logLevel`, a `request_id` on every line, secrets redacted, no
 * bodies, and no logs for probe/scrape/docs traffic. `destination` is for tests; stdout otherwise.
 */
export function loggerModuleOptions(obs: LoggerObservability, destination?: DestinationStream): Params {
  const options: Options = {
    level: obs.logLevel,
    genReqId,
    // Lines logged while handling a request carry just `request_id`; the "request completed" line has `req` too.
    quietReqLogger: true,
    customAttributeKeys: { reqId: 'request_id' },
    autoLogging: {
      ignore: (req) => {
        const path = pathOf(req.url);
        return QUIET_PATH_PREFIXES.some((prefix) => path.startsWith(prefix));
      },
    },
    customLogLevel: (_req, res, error) => {
      if (error || res.statusCode >= 500) return 'error';
      return res.statusCode >= 400 ? 'warn' : 'info';
    },
    // pino-http invents an Error ("failed with status code 503") for every 5xx; the filter already logged the
    // real cause with its request id, so the access line keeps only the status.
    customErrorObject: (_req, _res, _error, val: Record<string, unknown>) => {
      const { err: _err, ...rest } = val;
      return { ...rest, context: 'HTTP' };
    },
    // Added to the access line only: `customProps` would cost two extra child loggers on every request.
    customSuccessObject: (_req, _res, val: Record<string, unknown>) => ({ ...val, context: 'HTTP' }),
    customErrorMessage: (_req, res) => `request failed with status ${res.statusCode}`,
    serializers: {
      // Never headers (credentials) or bodies (prompts); the query string only when prompts may be logged,
      // since GET /predict/stream carries the question there.
      req: (req: SerializedRequest) => ({
        id: req.id,
        method: req.method,
        url: obs.logPrompts ? req.url : pathOf(req.url),
        remoteAddress: req.remoteAddress,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
    redact: { paths: REDACTED_PATHS, censor: '[Redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return { pinoHttp: destination ? [options, destination] : options };
}
