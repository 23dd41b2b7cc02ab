/**
 * Errors the service itself raises, next to the DSPy taxonomy in src/dspy/utils/exceptions.ts. Like that
 * taxonomy they know nothing about HTTP: error-table.ts alone decides the status each one gets. Their messages
 * are written for the client, so the table may send them as the problem `detail`.
 */

/** One offending input field: `question`, `[2].question`, `items[0].question`. */
export interface FieldError {
  field: string;
  message: string;
}

export abstract class ServiceError extends Error {
  /** Stable, machine-readable; clients and metrics labels rely on it, so never change one. */
  abstract readonly code: string;

  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The service cannot take the request now (saturated, draining, upstream circuit open); the client may retry. */
export class ServiceUnavailableError extends ServiceError {
  readonly code: string = 'service_unavailable';

  constructor(
    detail: string,
    readonly retryAfterSeconds: number,
  ) {
    super(detail);
  }
}

/** The instance is shutting down: it takes no new predictions, and ends streams still open at the deadline. */
export class ServiceDrainingError extends ServiceUnavailableError {
  override readonly code = 'service_draining';

  constructor(retryAfterSeconds: number) {
    super(
      'The service instance is shutting down; retry the request (another instance will take it).',
      retryAfterSeconds,
    );
  }
}

/** API keys are configured and the request carried none, or a wrong one. The key itself is never echoed. */
export class ApiKeyRequiredError extends ServiceError {
  readonly code = 'api_key_invalid';

  constructor(readonly presented: boolean) {
    super(
      presented
        ? 'The API key is not valid.'
        : 'An API key is required: send Authorization: Bearer <key> or x-api-key: <key>.',
    );
  }
}

/** This client (API key or address) sent more requests than RATE_LIMIT allows per window. */
export class RateLimitedError extends ServiceError {
  readonly code = 'rate_limited';

  constructor(readonly retryAfterSeconds: number) {
    super(`Too many requests; retry after ${retryAfterSeconds} s.`);
  }
}

/** No usable LM: the operator has to configure one, so retrying soon does not help. */
export class LMUnavailableError extends ServiceError {
  static readonly DEFAULT_DETAIL =
    'No language model is configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for an OpenAI-compatible server) ' +
    'and DSPY_MODEL, then restart the service.';
  readonly code = 'lm_not_configured';

  constructor(detail: string = LMUnavailableError.DEFAULT_DETAIL) {
    super(detail);
  }
}

export class StreamingDisabledError extends ServiceError {
  readonly code = 'streaming_disabled';

  constructor() {
    // The seed's wording, which its clients may compare against.
    super('Streaming not enabled');
  }
}

export class BatchTooLargeError extends ServiceError {
  readonly code = 'batch_too_large';

  constructor(readonly max: number) {
    super(`A batch holds at most ${max} questions.`);
  }
}

/** The request body (or query) failed DTO validation; `errors` lists every offending field. */
export class RequestValidationError extends ServiceError {
  readonly code = 'validation_failed';

  constructor(readonly errors: FieldError[]) {
    super(errors.length > 0 ? errors.map((e) => e.message).join('; ') : 'The request failed validation.');
  }
}

/** A request body that is not JSON; `received` is the Content-Type the client sent, if any. */
export class UnsupportedMediaTypeError extends ServiceError {
  readonly code = 'unsupported_media_type';

  constructor(readonly received: string | undefined) {
    super(
      received
        ? `Content-Type must be application/json, not ${JSON.stringify(received.slice(0, 100))}.`
        : 'Content-Type must be application/json.',
    );
  }
}
