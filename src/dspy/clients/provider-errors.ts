/**
 * Maps failures of the `openai` SDK onto DSPy's error taxonomy, following `LM._wrap_litellm_exception` and
 * `_lm_error_class_from_litellm_exception` / `_lm_error_class_from_status` (dspy-semantics §7).
 *
 * DSPy sees litellm exceptions; we see the SDK's. The SDK's status-bearing classes line up with litellm's
 * (AuthenticationError, NotFoundError, RateLimitError…), so the litellm class table collapses into the status
 * table, and only the string rules and the no-status cases need care.
 */
import { APIConnectionError, APIError, APIUserAbortError, OpenAIError } from 'openai';

import {
  ContextWindowExceededError,
  LMAbortedError,
  LMAuthError,
  LMBillingError,
  LMError,
  LMInvalidRequestError,
  LMNotConfiguredError,
  LMProviderError,
  LMRateLimitError,
  LMServerError,
  LMTimeoutError,
  LMTransportError,
  LMUnexpectedError,
  LMUnsupportedModelError,
  type DSPyErrorOptions,
} from '../utils/exceptions';

type LMErrorClass = new (message: string, options?: DSPyErrorOptions) => LMError;

/** litellm routes on the `openai/` prefix and reports the bare model name in its exceptions. */
export function stripOpenAIPrefix(model: string): string {
  return model.startsWith('openai/') ? model.slice('openai/'.length) : model;
}

// litellm's ExceptionCheckers.is_error_str_context_window_exceeded, plus OpenAI's own error code.
const CONTEXT_WINDOW_SUBSTRINGS = [
  'exceed context limit',
  "this model's maximum context length is",
  'string too long. expected a string with maximum length',
  "model's maximum context limit",
  "is longer than the model's context length",
  'input tokens exceed the configured limit',
  '`inputs` tokens + `max_new_tokens` must be',
  'exceeds the available context size',
  'exceeds the maximum number of tokens allowed',
];

function isContextWindowExceeded(message: string, providerCode: string | null): boolean {
  if (providerCode === 'context_length_exceeded') return true;
  const lower = message.toLowerCase();
  // litellm excludes parameter-length validation errors (e.g. the 64-char `user` field).
  if (lower.includes('string_above_max_length')) return false;
  if (lower.includes("invalid 'user'") && lower.includes('string too long')) return false;
  if (CONTEXT_WINDOW_SUBSTRINGS.some((s) => lower.includes(s))) return true;
  return lower.includes('current length is') && lower.includes('while limit is');
}

/**
 * Errors raised inside Node (undici's fetch, sockets) belong to another realm when this code runs in a vm
 * context such as jest's, so `instanceof Error` is not a reliable test for them.
 */
export function isErrorLike(value: unknown): value is Error {
  return (
    value instanceof Error ||
    (typeof value === 'object' &&
      value !== null &&
      typeof (value as { message?: unknown }).message === 'string' &&
      typeof (value as { name?: unknown }).name === 'string')
  );
}

const NETWORK_ERROR_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/**
 * A raw socket failure that escaped the SDK (it only wraps failures up to the response headers; a reset while
 * the body is read surfaces as undici's `TypeError: terminated`). litellm wraps those in APIConnectionError.
 */
function isRawNetworkError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 6 && isErrorLike(current); depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) return true;
    if (current.name === 'SocketError') return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Whether an abort reason is a deadline: a `TimeoutError`, what `AbortSignal.timeout()` and the service's request
 * deadline abort with (a client that leaves aborts with an `AbortError`).
 */
export function isTimeoutReason(reason: unknown): reason is Error {
  return reason instanceof LMTimeoutError || (isErrorLike(reason) && reason.name === 'TimeoutError');
}

/**
 * The error of a call its caller's signal cut short. A deadline is a timeout (the provider did not answer in time);
 * anything else is a cancellation, which DSPy does not have and which must not look like a provider failure.
 */
export function abortError(reason: unknown, message: string, options: DSPyErrorOptions = {}): LMError {
  if (isTimeoutReason(reason)) return new LMTimeoutError(reason.message || message, options);
  return new LMAbortedError(message, options);
}

function isAbortError(error: unknown): boolean {
  return error instanceof APIUserAbortError || (isErrorLike(error) && error.name === 'AbortError');
}

function headerOf(headers: unknown, name: string): string | null {
  if (headers && typeof (headers as Headers).get === 'function') return (headers as Headers).get(name);
  if (headers && typeof headers === 'object') {
    const value = (headers as Record<string, unknown>)[name];
    return typeof value === 'string' ? value : null;
  }
  return null;
}

/** Seconds to wait, from `retry-after` (seconds or HTTP date, as DSPy reads first) or `retry-after-ms`. */
export function parseRetryAfter(headers: unknown, now = Date.now()): number | null {
  const raw = headerOf(headers, 'retry-after')?.trim();
  if (raw) {
    const seconds = Number(raw);
    if (Number.isFinite(seconds)) return Math.max(0, seconds);
    const date = Date.parse(raw);
    if (!Number.isNaN(date)) return Math.max(0, (date - now) / 1000);
  }
  const rawMs = headerOf(headers, 'retry-after-ms')?.trim();
  if (rawMs) {
    const ms = Number(rawMs);
    if (Number.isFinite(ms)) return Math.max(0, ms / 1000);
  }
  return null;
}

function requestIdOf(headers: unknown): string | null {
  for (const name of ['x-request-id', 'request-id', 'x-amzn-requestid', 'x-ms-request-id']) {
    const value = headerOf(headers, name);
    if (value) return value;
  }
  return null;
}

/** The provider's own words: the body's `error.message`, not the SDK's "429 …"-prefixed rendering. */
function messageOf(error: unknown): string {
  if (error instanceof APIError) {
    const body: unknown = error.error;
    if (body && typeof body === 'object') {
      const msg = (body as { message?: unknown }).message;
      if (typeof msg === 'string' && msg) return msg;
      if (msg != null) return JSON.stringify(msg);
    }
    if (typeof body === 'string' && body) return body;
    return error.message;
  }
  if (isErrorLike(error)) return error.message;
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}

function providerCodeOf(error: unknown): string | null {
  if (!(error instanceof APIError)) return null;
  const body: unknown = error.error;
  const code =
    error.code ?? (body && typeof body === 'object' ? (body as { code?: unknown }).code : undefined);
  if (typeof code === 'string') return code;
  // Some OpenAI-compatible servers put the HTTP status (a number) there.
  return typeof code === 'number' || typeof code === 'boolean' ? String(code) : null;
}

function classFromStatus(status: number | null): LMErrorClass {
  if (status === 401 || status === 403) return LMAuthError;
  if (status === 402) return LMBillingError;
  if (status === 404) return LMUnsupportedModelError;
  if (status === 408) return LMTimeoutError;
  if (status === 429) return LMRateLimitError;
  if (status !== null && status >= 400 && status < 500) return LMInvalidRequestError;
  if (status !== null && status >= 500) return LMServerError;
  return status === null ? LMUnexpectedError : LMProviderError;
}

/**
 * Translates any failure of a provider call into DSPy's taxonomy. `model` is the configured model name
 * (`openai/gpt-4o-mini`): errors coming from the provider carry it without the routing prefix (as litellm's
 * exceptions do), errors raised locally carry it as configured (fixture errors/lm_unknown_exception).
 */
export function toDSPyError(error: unknown, model: string, provider = 'openai'): LMError {
  if (error instanceof LMError) return error;

  const fromProvider = error instanceof OpenAIError || isRawNetworkError(error);
  const metadata: DSPyErrorOptions = {
    model: fromProvider ? stripOpenAIPrefix(model) : model,
    provider,
    cause: error,
  };

  // DSPy has no cancellation; an aborted call must not look like a provider failure (nor be retried).
  if (isAbortError(error)) {
    return new LMAbortedError(messageOf(error) || 'Request was aborted.', metadata);
  }

  const apiError = error instanceof APIError ? error : null;
  const status = typeof apiError?.status === 'number' ? apiError.status : null;
  const message = messageOf(error);
  const providerCode = providerCodeOf(error);
  Object.assign(metadata, {
    status,
    providerCode,
    requestId: apiError?.requestID ?? requestIdOf(apiError?.headers),
    retryAfter: parseRetryAfter(apiError?.headers),
  });

  // Rule 1: litellm raises ContextWindowExceededError only for provider errors, never for local ones.
  if (fromProvider && isContextWindowExceeded(message, providerCode)) {
    return new ContextWindowExceededError(message || 'Context window exceeded', metadata);
  }

  const lower = message.toLowerCase();
  // A raw socket failure is what litellm would have wrapped as APIConnectionError.
  const className = (
    !(error instanceof OpenAIError) && isRawNetworkError(error)
      ? 'APIConnectionError'
      : isErrorLike(error)
        ? `${error.constructor?.name ?? ''} ${error.name}`
        : ''
  ).toLowerCase();

  let cls: LMErrorClass | null = null;
  if (
    status === null &&
    ['api key', 'apikey', 'credentials', 'environment variable'].some((p) => lower.includes(p))
  ) {
    cls = LMNotConfiguredError;
  } else if (className.includes('timeout') || lower.includes('timed out') || lower.includes('timeout')) {
    cls = LMTimeoutError;
  } else if (className.includes('connection') || lower.includes('network') || lower.includes('connection')) {
    cls = LMTransportError;
  } else if (error instanceof APIConnectionError) {
    cls = LMTransportError;
  } else if (apiError && status === null) {
    // A status-less APIError is an `error` event inside an SSE stream; litellm's OpenAI mapper turns every
    // unmapped OpenAI exception into APIConnectionError.
    cls = LMTransportError;
  }
  cls ??= classFromStatus(status);

  return new cls(message, metadata);
}
