import {
  BadRequestException,
  HttpException,
  NotFoundException,
  PayloadTooLargeException,
  ServiceUnavailableException,
} from '@nestjs/common';
import {
  AdapterParseError,
  ContextWindowExceededError,
  DSPyError,
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
  describeError,
  INTERNAL_ERROR_CODE,
  invalidJsonProblem,
  problemType,
  PROBLEM_TYPE_BASE,
} from './error-table';
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
} from './service-errors';

const SECRET = 'sk-live-SECRET123';
const upstream = { model: 'openai/gpt-4o-mini', provider: 'openai', status: 500 };
const parseError = () =>
  new AdapterParseError({
    adapterName: 'ChatAdapter',
    expectedFields: ['answer'],
    lmResponse: `the model said ${SECRET}`,
  });

describe('describeError', () => {
  it.each<[string, unknown, number, string]>([
    ['LMRateLimitError', new LMRateLimitError(`quota for ${SECRET}`, upstream), 429, 'lm_rate_limited'],
    ['LMTimeoutError', new LMTimeoutError(`timed out ${SECRET}`, upstream), 504, 'lm_timeout'],
    ['LMServerError', new LMServerError(`boom ${SECRET}`, upstream), 502, 'lm_server_error'],
    ['LMTransportError', new LMTransportError(`ECONNRESET ${SECRET}`, upstream), 502, 'lm_unreachable'],
    [
      'LMAuthError',
      new LMAuthError(`Incorrect API key provided: ${SECRET}`, upstream),
      502,
      'lm_auth_failed',
    ],
    ['LMBillingError', new LMBillingError(`billing ${SECRET}`, upstream), 502, 'lm_billing'],
    [
      'LMUnsupportedModelError',
      new LMUnsupportedModelError(`no ${SECRET}`, upstream),
      502,
      'lm_unsupported_model',
    ],
    [
      'LMInvalidRequestError',
      new LMInvalidRequestError(`bad ${SECRET}`, upstream),
      502,
      'lm_invalid_request',
    ],
    ['LMUnexpectedError', new LMUnexpectedError(`odd ${SECRET}`, upstream), 502, 'lm_unexpected_response'],
    ['LMProviderError', new LMProviderError(`provider ${SECRET}`, upstream), 502, 'lm_provider_error'],
    [
      'LMUnsupportedFeatureError',
      new LMUnsupportedFeatureError(`nope ${SECRET}`),
      502,
      'lm_unsupported_feature',
    ],
    ['LMError', new LMError(`generic ${SECRET}`), 502, 'lm_error'],
    ['AdapterParseError', parseError(), 502, 'lm_output_unparseable'],
    ['ValidationError', new ValidationError(`value ${SECRET} is not an int`), 502, 'lm_output_unparseable'],
    [
      'ContextWindowExceededError',
      new ContextWindowExceededError(`too long ${SECRET}`, upstream),
      422,
      'context_window_exceeded',
    ],
    ['LMNotConfiguredError', new LMNotConfiguredError(`no key ${SECRET}`), 503, 'lm_not_configured'],
    ['LMConfigurationError', new LMConfigurationError(`bad model ${SECRET}`), 503, 'lm_misconfigured'],
    ['NoLMConfiguredError', new NoLMConfiguredError(), 503, 'lm_not_configured'],
    ['LMUnavailableError', new LMUnavailableError(), 503, 'lm_not_configured'],
    ['ServiceUnavailableError', new ServiceUnavailableError('draining', 3), 503, 'service_unavailable'],
    ['ServiceDrainingError', new ServiceDrainingError(3), 503, 'service_draining'],
    ['ApiKeyRequiredError', new ApiKeyRequiredError(false), 401, 'api_key_invalid'],
    ['RateLimitedError', new RateLimitedError(4), 429, 'rate_limited'],
    ['StreamingDisabledError', new StreamingDisabledError(), 404, 'streaming_disabled'],
    ['BatchTooLargeError', new BatchTooLargeError(10), 422, 'batch_too_large'],
    ['RequestValidationError', new RequestValidationError([]), 422, 'validation_failed'],
    ['UnsupportedMediaTypeError', new UnsupportedMediaTypeError('text/plain'), 415, 'unsupported_media_type'],
    ['LMAbortedError', new LMAbortedError('aborted'), 499, 'client_closed_request'],
  ])('%s → %i %s', (_name, error, status, code) => {
    const problem = describeError(error);
    expect(problem.status).toBe(status);
    expect(problem.code).toBe(code);
    expect(problem.title).toEqual(expect.any(String));
    expect(problem.title.length).toBeGreaterThan(0);
  });

  it.each([
    new LMRateLimitError(`quota exceeded for key ${SECRET}`, upstream),
    new LMAuthError(`Incorrect API key provided: ${SECRET}`, upstream),
    new LMServerError(`upstream trace ${SECRET}`, upstream),
    new ContextWindowExceededError(`prompt ${SECRET}`, upstream),
    new LMNotConfiguredError(`missing ${SECRET}`),
    new ValidationError(`bad value ${SECRET}`),
    parseError(),
  ])('never sends the upstream message of %s', (error) => {
    const { detail } = describeError(error);
    expect(detail).not.toContain(SECRET);
    expect(detail).not.toContain('openai/gpt-4o-mini');
  });

  it('gives an upstream rate limit the provider retry delay, rounded up to whole seconds', () => {
    const problem = describeError(new LMRateLimitError('slow down', { retryAfter: 2.2 }));
    expect(problem.retryAfter).toBe(3);
    expect(problem.detail).toBe('The language model provider rate-limited the request; retry after 3 s.');
  });

  it('defaults an upstream rate limit without a delay to Retry-After 1', () => {
    expect(describeError(new LMRateLimitError('slow down')).retryAfter).toBe(1);
    expect(describeError(new LMRateLimitError('slow down', { retryAfter: 0 })).retryAfter).toBe(1);
  });

  it('gives a saturated service its Retry-After and its own detail', () => {
    const problem = describeError(new ServiceUnavailableError('The service is draining.', 12));
    expect(problem).toEqual({
      status: 503,
      title: 'Service unavailable',
      code: 'service_unavailable',
      detail: 'The service is draining.',
      retryAfter: 12,
    });
  });

  it('gives rate-limited, draining and circuit-open answers an integer Retry-After', () => {
    expect(describeError(new RateLimitedError(4)).retryAfter).toBe(4);
    expect(describeError(new ServiceDrainingError(2)).retryAfter).toBe(2);
    expect(describeError(new ApiKeyRequiredError(true)).retryAfter).toBeUndefined();
  });

  it('sets Retry-After only where the table says', () => {
    expect(describeError(new LMTimeoutError('slow')).retryAfter).toBeUndefined();
    expect(describeError(new LMUnavailableError()).retryAfter).toBeUndefined();
  });

  it('maps subclasses by their most specific row', () => {
    // Both extend LMInvalidRequestError, which alone is a 502.
    expect(describeError(new ContextWindowExceededError('x')).status).toBe(422);
    expect(describeError(new LMUnsupportedModelError('x')).code).toBe('lm_unsupported_model');
    // LMNotConfiguredError extends LMConfigurationError.
    expect(describeError(new LMNotConfiguredError('x')).code).toBe('lm_not_configured');
  });

  it('tells the operator which variables to set when no LM is configured', () => {
    for (const error of [
      new NoLMConfiguredError(),
      new LMNotConfiguredError('x'),
      new LMUnavailableError(),
    ]) {
      expect(describeError(error).detail).toContain('OPENAI_API_KEY');
      expect(describeError(error).detail).toContain('DSPY_MODEL');
    }
    expect(describeError(new LMUnavailableError('Set OPENAI_API_KEY.')).detail).toBe('Set OPENAI_API_KEY.');
  });

  it('lists the fields of a validation failure', () => {
    const errors = [{ field: '[2].question', message: 'question must be a string' }];
    expect(describeError(new RequestValidationError(errors))).toEqual({
      status: 422,
      title: 'Validation failed',
      code: 'validation_failed',
      detail: 'question must be a string',
      errors,
    });
  });

  it("keeps the seed's 404 detail for disabled streaming", () => {
    expect(describeError(new StreamingDisabledError()).detail).toBe('Streaming not enabled');
  });

  it('answers anything unknown with a generic 500', () => {
    const expected = {
      status: 500,
      title: 'Internal Server Error',
      code: INTERNAL_ERROR_CODE,
      detail: 'Internal server error',
    };
    expect(describeError(new TypeError(`Cannot read properties of undefined ${SECRET}`))).toEqual(expected);
    expect(describeError(new DSPyError(`base ${SECRET}`))).toEqual(expected);
    expect(describeError('a string')).toEqual(expected);
    expect(describeError(undefined)).toEqual(expected);
  });

  it('does not take a message that merely looks like a known error for one', () => {
    const impostor = new Error('LMRateLimitError: rate limit exceeded');
    impostor.name = 'LMRateLimitError';
    expect(describeError(impostor).status).toBe(500);
  });

  describe('Nest HttpExceptions', () => {
    it('keeps the status and message, with a code from the reason phrase', () => {
      expect(describeError(new NotFoundException('Cannot GET /nope'))).toEqual({
        status: 404,
        title: 'Not Found',
        code: 'not_found',
        detail: 'Cannot GET /nope',
      });
      expect(describeError(new PayloadTooLargeException())).toMatchObject({
        status: 413,
        title: 'Content Too Large',
        code: 'payload_too_large',
      });
      expect(describeError(new HttpException('slow down', 429))).toMatchObject({
        status: 429,
        code: 'too_many_requests',
        detail: 'slow down',
      });
    });

    it('joins a list of messages', () => {
      expect(describeError(new BadRequestException(['a is wrong', 'b is wrong'])).detail).toBe(
        'a is wrong; b is wrong',
      );
    });

    it("keeps Terminus' health details as extension members", () => {
      const result = {
        status: 'error',
        info: { memory: { status: 'up' } },
        error: { redis: { status: 'down', message: 'timeout' } },
        details: { memory: { status: 'up' }, redis: { status: 'down', message: 'timeout' } },
      };
      expect(describeError(new ServiceUnavailableException(result))).toEqual({
        status: 503,
        title: 'Service Unavailable',
        code: 'service_unavailable',
        detail: 'Health checks failed: redis.',
        extensions: { info: result.info, error: result.error, details: result.details },
      });
    });
  });

  describe("body-parser's errors", () => {
    const httpError = (status: number, message: string, extra: Record<string, unknown>) =>
      Object.assign(new Error(message), { status, statusCode: status, expose: true, ...extra });

    it('maps a body over the limit to 413 payload_too_large, stating the limit', () => {
      const problem = describeError(
        httpError(413, 'request entity too large', { type: 'entity.too.large', limit: 1024 }),
      );
      expect(problem).toEqual({
        status: 413,
        title: 'Content Too Large',
        code: 'payload_too_large',
        detail: 'The request body is larger than the 1024-byte limit.',
      });
    });

    it('maps an unsupported charset to 415', () => {
      const problem = describeError(
        httpError(415, 'unsupported charset "UTF-7"', { type: 'charset.unsupported' }),
      );
      expect(problem).toMatchObject({
        status: 415,
        code: 'unsupported_media_type',
        detail: 'unsupported charset "UTF-7"',
      });
    });

    it('maps a parse failure to 400 invalid_json', () => {
      const problem = describeError(httpError(400, 'Unexpected token', { type: 'entity.parse.failed' }));
      expect(problem).toEqual(invalidJsonProblem());
      expect(problem).toMatchObject({ status: 400, code: 'invalid_json' });
    });

    it('treats a 4xx error whose message is not marked safe as unknown', () => {
      expect(describeError(httpError(400, 'secret', { expose: false })).status).toBe(500);
    });
  });
});

describe('problemType', () => {
  it('is one URI scheme for every code', () => {
    expect(PROBLEM_TYPE_BASE).toBe('https://errors.dspy-nest-api.dev/');
    expect(problemType('lm_timeout')).toBe('https://errors.dspy-nest-api.dev/lm_timeout');
  });
});
