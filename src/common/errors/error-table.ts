/**
 * THE mapping from errors to HTTP problems. The DSPy taxonomy (src/dspy) and the service errors
 * (./service-errors) know nothing about HTTP; this table alone gives each one a status, a title, a stable code
 * and a client-safe detail. The global filter renders it as problem+json; the SSE and batch code use the same
 * `describeError` for errors inside a stream or a batch item, so a failure reads the same everywhere.
 *
 * Rows match by `instanceof` (never by message text) and the first match wins, so subclasses come before their
 * parents (ContextWindowExceededError before LMInvalidRequestError, LMNotConfiguredError before
 * LMConfigurationError, everything LM-specific before the LMError catch-all).
 */
import { HttpException } from '@nestjs/common';
import { STATUS_CODES } from 'node:http';
import {
  AdapterParseError,
  ContextWindowExceededError,
  LMAbortedError,
  LMAuthError,
  LMBillingError,
  LMConfigurationError,
  LMError,
  LMInvalidRequestError,
  LMNotConfiguredError,
  LMProviderError,
  LMRateLimitError,
  LMServerError,
  LMTimeoutError,
  LMTransportError,
  LMUnexpectedError,
  LMUnsupportedFeatureError,
  LMUnsupportedModelError,
  NoLMConfiguredError,
  ValidationError,
} from '../../dspy';
import {
  ApiKeyRequiredError,
  BatchTooLargeError,
  LMUnavailableError,
  RateLimitedError,
  RequestValidationError,
  ServiceDrainingError,
  ServiceUnavailableError,
  StreamingDisabledError,
  UnsupportedMediaTypeError,
  type FieldError,
} from './service-errors';

/** Every problem `type` is this base plus its code, one scheme for all of them (HTTP ones included). */
export const PROBLEM_TYPE_BASE = 'https://errors.dspy-nest-api.dev/';

export function problemType(code: string): string {
  return `${PROBLEM_TYPE_BASE}${code}`;
}

export interface ProblemInfo {
  status: number;
  title: string;
  /** Stable and machine-readable; also the `code` of SSE error events, batch item errors and metrics labels. */
  code: string;
  /** Safe to send to the client: never an API key, a stack trace, or the LM's raw output. */
  detail: string;
  /** Whole seconds for a Retry-After header. */
  retryAfter?: number;
  /** The offending fields of a request that failed validation. */
  errors?: FieldError[];
  /** RFC 9457 extension members beyond the standard ones. */
  extensions?: Record<string, unknown>;
}

export const INTERNAL_ERROR_CODE = 'internal_error';

type ErrorClass<E> = abstract new (...args: never[]) => E;

interface Row<E> {
  type: ErrorClass<E>;
  status: number;
  title: string;
  code: string;
  detail: string | ((error: E) => string);
  retryAfter?: (error: E) => number;
  errors?: (error: E) => FieldError[];
}

/** Lets each row's callbacks see its own error class. */
function row<E>(entry: Row<E>): Row<unknown> {
  return entry as Row<unknown>;
}

/** Retry-After takes whole seconds; rounding up keeps clients from returning early, and 0 would invite a hot loop. */
function wholeSeconds(seconds: number | null | undefined): number {
  return Math.max(1, Math.ceil(seconds ?? 1));
}

const UNPARSEABLE_OUTPUT = "The language model's answer could not be parsed into the expected fields.";

const ERROR_TABLE: readonly Row<unknown>[] = [
  // The caller went away; nobody reads this response, but logs and metrics see a truthful status.
  row({
    type: LMAbortedError,
    status: 499,
    title: 'Client closed request',
    code: 'client_closed_request',
    detail: 'The client closed the request before it completed.',
  }),
  row({
    type: LMRateLimitError,
    status: 429,
    title: 'Upstream rate limit',
    code: 'lm_rate_limited',
    retryAfter: (e) => wholeSeconds(e.retryAfter),
    detail: (e) =>
      `The language model provider rate-limited the request; retry after ${wholeSeconds(e.retryAfter)} s.`,
  }),
  row({
    type: LMTimeoutError,
    status: 504,
    title: 'Upstream timeout',
    code: 'lm_timeout',
    detail: 'The language model provider did not answer in time.',
  }),
  row({
    type: ContextWindowExceededError,
    status: 422,
    title: 'Context window exceeded',
    code: 'context_window_exceeded',
    detail: "The question does not fit the model's context window; shorten it.",
  }),
  row({
    type: LMUnsupportedModelError,
    status: 502,
    title: 'Unsupported model',
    code: 'lm_unsupported_model',
    detail: 'The language model provider does not offer the configured model.',
  }),
  row({
    type: LMInvalidRequestError,
    status: 502,
    title: 'Upstream rejected request',
    code: 'lm_invalid_request',
    detail: 'The language model provider rejected the request.',
  }),
  row({
    type: LMAuthError,
    status: 502,
    title: 'Upstream authentication failed',
    code: 'lm_auth_failed',
    detail: "The language model provider rejected the service's credentials.",
  }),
  row({
    type: LMBillingError,
    status: 502,
    title: 'Upstream billing failure',
    code: 'lm_billing',
    detail: 'The language model provider refused the request for billing or quota reasons.',
  }),
  row({
    type: LMServerError,
    status: 502,
    title: 'Upstream server error',
    code: 'lm_server_error',
    detail: 'The language model provider failed to answer.',
  }),
  row({
    type: LMProviderError,
    status: 502,
    title: 'Upstream error',
    code: 'lm_provider_error',
    detail: 'The language model provider returned an error.',
  }),
  row({
    type: LMTransportError,
    status: 502,
    title: 'Upstream unreachable',
    code: 'lm_unreachable',
    detail: 'The language model provider could not be reached.',
  }),
  row({
    type: LMNotConfiguredError,
    status: 503,
    title: 'Language model not configured',
    code: 'lm_not_configured',
    detail: LMUnavailableError.DEFAULT_DETAIL,
  }),
  row({
    type: LMConfigurationError,
    status: 503,
    title: 'Language model misconfigured',
    code: 'lm_misconfigured',
    detail:
      'The language model client is misconfigured; check DSPY_MODEL, OPENAI_BASE_URL and OPENAI_API_KEY.',
  }),
  row({
    type: LMUnsupportedFeatureError,
    status: 502,
    title: 'Upstream feature unsupported',
    code: 'lm_unsupported_feature',
    detail: 'The language model provider does not support a feature this request needs.',
  }),
  row({
    type: LMUnexpectedError,
    status: 502,
    title: 'Unexpected upstream response',
    code: 'lm_unexpected_response',
    detail: 'The language model provider returned an unexpected response.',
  }),
  row({
    type: LMError,
    status: 502,
    title: 'Upstream error',
    code: 'lm_error',
    detail: 'The language model call failed.',
  }),
  // Both carry the LM's raw output in their message, which stays out of the response.
  row({
    type: AdapterParseError,
    status: 502,
    title: 'Unparseable model output',
    code: 'lm_output_unparseable',
    detail: UNPARSEABLE_OUTPUT,
  }),
  row({
    type: ValidationError,
    status: 502,
    title: 'Unparseable model output',
    code: 'lm_output_unparseable',
    detail: UNPARSEABLE_OUTPUT,
  }),
  row({
    type: NoLMConfiguredError,
    status: 503,
    title: 'Language model not configured',
    code: 'lm_not_configured',
    detail: LMUnavailableError.DEFAULT_DETAIL,
  }),
  row({
    type: LMUnavailableError,
    status: 503,
    title: 'Language model not configured',
    code: 'lm_not_configured',
    detail: (e) => e.message,
  }),
  row({
    type: ServiceDrainingError,
    status: 503,
    title: 'Service draining',
    code: 'service_draining',
    retryAfter: (e) => wholeSeconds(e.retryAfterSeconds),
    detail: (e) => e.message,
  }),
  row({
    type: ServiceUnavailableError,
    status: 503,
    title: 'Service unavailable',
    code: 'service_unavailable',
    retryAfter: (e) => wholeSeconds(e.retryAfterSeconds),
    detail: (e) => e.message,
  }),
  row({
    type: ApiKeyRequiredError,
    status: 401,
    title: 'Unauthorized',
    code: 'api_key_invalid',
    detail: (e) => e.message,
  }),
  row({
    type: RateLimitedError,
    status: 429,
    title: 'Too Many Requests',
    code: 'rate_limited',
    retryAfter: (e) => wholeSeconds(e.retryAfterSeconds),
    detail: (e) => e.message,
  }),
  row({
    type: StreamingDisabledError,
    status: 404,
    title: 'Streaming disabled',
    code: 'streaming_disabled',
    detail: (e) => e.message,
  }),
  row({
    type: RequestValidationError,
    status: 422,
    title: 'Validation failed',
    code: 'validation_failed',
    detail: (e) => e.message,
    errors: (e) => e.errors,
  }),
  row({
    type: BatchTooLargeError,
    status: 422,
    title: 'Batch too large',
    code: 'batch_too_large',
    detail: (e) => e.message,
  }),
  row({
    type: UnsupportedMediaTypeError,
    status: 415,
    title: 'Unsupported Media Type',
    code: 'unsupported_media_type',
    detail: (e) => e.message,
  }),
];

// RFC 9110 renamed two phrases Node still spells the old way; 499 is nginx's, for clients that left.
const TITLES: Record<number, string> = {
  413: 'Content Too Large',
  422: 'Unprocessable Content',
  499: 'Client Closed Request',
};

function titleOf(status: number): string {
  return TITLES[status] ?? STATUS_CODES[status] ?? 'Error';
}

/** A generic HTTP error's code is its reason phrase in snake case: `not_found`, `payload_too_large`. */
function codeOf(status: number): string {
  const phrase = STATUS_CODES[status];
  return phrase ? phrase.toLowerCase().replace(/[^a-z0-9]+/g, '_') : `http_${status}`;
}

function httpProblem(status: number, detail: string): ProblemInfo {
  return { status, title: titleOf(status), code: codeOf(status), detail };
}

export function invalidJsonProblem(): ProblemInfo {
  return {
    status: 400,
    title: 'Invalid JSON',
    code: 'invalid_json',
    detail: 'The request body is not valid JSON.',
  };
}

export function internalErrorProblem(): ProblemInfo {
  return {
    status: 500,
    title: 'Internal Server Error',
    code: INTERNAL_ERROR_CODE,
    detail: 'Internal server error',
  };
}

/** Nest's `{ statusCode, message, error }` body, or a plain string, or anything an HttpException was given. */
function messageOf(response: unknown, fallback: string): string {
  if (typeof response === 'string') return response;
  const message = (response as { message?: unknown } | null)?.message;
  if (typeof message === 'string') return message;
  if (Array.isArray(message)) return message.join('; ');
  return fallback;
}

interface HealthCheckResult {
  status: string;
  info?: Record<string, unknown>;
  error?: Record<string, unknown>;
  details: Record<string, unknown>;
}

/** The body Terminus throws (as a ServiceUnavailableException) when a check is down or the app is draining. */
function isHealthCheckResult(response: unknown): response is HealthCheckResult {
  const r = response as Partial<HealthCheckResult> | null;
  return typeof r?.status === 'string' && typeof r.details === 'object' && r.details !== null;
}

function describeHttpException(exception: HttpException): ProblemInfo {
  const status = exception.getStatus();
  const response = exception.getResponse();
  if (isHealthCheckResult(response)) {
    const failing = Object.keys(response.error ?? {});
    return {
      ...httpProblem(status, failing.length ? `Health checks failed: ${failing.join(', ')}.` : 'Not ready.'),
      // Terminus' own members, so probes and dashboards reading them keep working.
      extensions: { info: response.info ?? {}, error: response.error ?? {}, details: response.details },
    };
  }
  return httpProblem(status, messageOf(response, exception.message));
}

/** body-parser's errors (http-errors): a 4xx `status`, `expose` when the message is safe, and a `type`. */
interface ClientHttpError extends Error {
  status: number;
  expose: true;
  type?: string;
  limit?: number;
}

function isClientHttpError(error: unknown): error is ClientHttpError {
  if (!(error instanceof Error)) return false;
  const { status, expose } = error as Partial<ClientHttpError>;
  return typeof status === 'number' && status >= 400 && status < 500 && expose === true;
}

function describeClientHttpError(error: ClientHttpError): ProblemInfo {
  if (error.type === 'entity.parse.failed') return invalidJsonProblem();
  if (error.status === 413) {
    const limit = typeof error.limit === 'number' ? ` ${error.limit}-byte` : '';
    return httpProblem(413, `The request body is larger than the${limit} limit.`);
  }
  return httpProblem(error.status, error.message);
}

/** What the client is told about `error`: status, title, stable code and a safe detail. */
export function describeError(error: unknown): ProblemInfo {
  for (const entry of ERROR_TABLE) {
    if (error instanceof entry.type) {
      const problem: ProblemInfo = {
        status: entry.status,
        title: entry.title,
        code: entry.code,
        detail: typeof entry.detail === 'function' ? entry.detail(error) : entry.detail,
      };
      if (entry.retryAfter) problem.retryAfter = entry.retryAfter(error);
      if (entry.errors) problem.errors = entry.errors(error);
      return problem;
    }
  }
  if (error instanceof HttpException) return describeHttpException(error);
  if (isClientHttpError(error)) return describeClientHttpError(error);
  return internalErrorProblem();
}
