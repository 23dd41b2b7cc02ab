/**
 * DSPy 3.3.1's error taxonomy (dspy/utils/exceptions.py), without any HTTP knowledge.
 * `toString()` is DSPy's `str(e)`: "[model] message" when a model is known.
 */
export interface DSPyErrorOptions {
  code?: string;
  model?: string | null;
  provider?: string | null;
  providerCode?: string | null;
  status?: number | null;
  requestId?: string | null;
  retryAfter?: number | null;
  cause?: unknown;
}

export class DSPyError extends Error {
  static readonly defaultCode: string = 'dspy_error';
  readonly code: string;
  readonly model: string | null;
  readonly provider: string | null;
  readonly providerCode: string | null;
  readonly status: number | null;
  readonly requestId: string | null;
  readonly retryAfter: number | null;
  /** The message without the "[model] " prefix. */
  readonly rawMessage: string;

  constructor(message: string, options: DSPyErrorOptions = {}) {
    const model = options.model ?? null;
    super(model ? `[${model}] ${message}` : message, options.cause ? { cause: options.cause } : undefined);
    this.name = new.target.name;
    this.rawMessage = message;
    this.code = options.code ?? new.target.defaultCode;
    this.model = model;
    this.provider = options.provider ?? null;
    this.providerCode = options.providerCode ?? null;
    this.status = options.status ?? null;
    this.requestId = options.requestId ?? null;
    this.retryAfter = options.retryAfter ?? null;
  }

  /** The Python MRO names, most specific first, ending in "Exception" (as the fixtures list it). */
  static mro(error: DSPyError | typeof DSPyError): string[] {
    const names: string[] = [];
    let proto = typeof error === 'function' ? error : (error.constructor as typeof DSPyError);
    while (proto && proto !== (Error as unknown)) {
      names.push(proto.name);
      proto = Object.getPrototypeOf(proto);
    }
    return [...names, 'Exception'];
  }
}

export interface AdapterParseErrorOptions {
  adapterName: string;
  /** Output field names the signature expects, in order. */
  expectedFields: string[];
  lmResponse: string;
  message?: string | null;
  parsedResult?: Record<string, unknown> | null;
}

export class AdapterParseError extends DSPyError {
  static override readonly defaultCode = 'adapter_parse_error';
  readonly adapterName: string;
  readonly lmResponse: string;
  readonly parsedResult: Record<string, unknown> | null;

  constructor(options: AdapterParseErrorOptions) {
    let text = options.message ? `${options.message}\n\n` : '';
    text +=
      `Adapter ${options.adapterName} failed to parse the LM response. \n\n` +
      `LM Response: ${options.lmResponse} \n\n` +
      `Expected to find output fields in the LM response: [${options.expectedFields.join(', ')}] \n\n`;
    if (options.parsedResult) {
      text += `Actual output fields parsed from the LM response: [${Object.keys(options.parsedResult).join(', ')}] \n\n`;
    }
    super(text);
    this.adapterName = options.adapterName;
    this.lmResponse = options.lmResponse;
    this.parsedResult = options.parsedResult ?? null;
  }
}

/**
 * pydantic's ValidationError, raised by value coercion. JSONAdapter lets it escape unwrapped
 * (fixture json_adapter_parse/typed_bad_int_not_wrapped); ChatAdapter wraps it in AdapterParseError.
 */
export class ValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ValidationError';
  }
}

export class LMError extends DSPyError {
  static override readonly defaultCode: string = 'lm_error';
}
export class LMTransportError extends LMError {
  static override readonly defaultCode: string = 'transport';
}
export class LMConfigurationError extends LMError {
  static override readonly defaultCode: string = 'configuration';
}
export class LMNotConfiguredError extends LMConfigurationError {
  static override readonly defaultCode: string = 'not_configured';
}
export class LMUnsupportedFeatureError extends LMError {
  static override readonly defaultCode: string = 'unsupported_feature';
}
export class LMUnexpectedError extends LMError {
  static override readonly defaultCode: string = 'unexpected';
}
export class LMProviderError extends LMError {
  static override readonly defaultCode: string = 'provider';
}
export class LMAuthError extends LMProviderError {
  static override readonly defaultCode: string = 'auth';
}
export class LMBillingError extends LMProviderError {
  static override readonly defaultCode: string = 'billing';
}
export class LMRateLimitError extends LMProviderError {
  static override readonly defaultCode: string = 'rate_limit';
}
export class LMTimeoutError extends LMProviderError {
  static override readonly defaultCode: string = 'timeout';
}
export class LMServerError extends LMProviderError {
  static override readonly defaultCode: string = 'server';
}
export class LMInvalidRequestError extends LMProviderError {
  static override readonly defaultCode: string = 'invalid_request';
}
export class ContextWindowExceededError extends LMInvalidRequestError {
  static override readonly defaultCode: string = 'context_window_exceeded';
}
export class LMUnsupportedModelError extends LMInvalidRequestError {
  static override readonly defaultCode: string = 'unsupported_model';
}

/** dspy.is_retryable_lm_error */
export function isRetryableLMError(error: unknown): boolean {
  return (
    error instanceof LMRateLimitError ||
    error instanceof LMTimeoutError ||
    error instanceof LMServerError ||
    error instanceof LMTransportError
  );
}

/** The request was cancelled by its caller (AbortSignal). Not a DSPy class: DSPy has no cancellation. */
export class LMAbortedError extends LMError {
  static override readonly defaultCode: string = 'aborted';
}
