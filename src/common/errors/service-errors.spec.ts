import {
  BatchTooLargeError,
  LMUnavailableError,
  RequestValidationError,
  ServiceError,
  ServiceUnavailableError,
  StreamingDisabledError,
  UnsupportedMediaTypeError,
} from './service-errors';

describe('service errors', () => {
  it.each([
    [new ServiceUnavailableError('draining', 5), 'service_unavailable', 'ServiceUnavailableError'],
    [new LMUnavailableError(), 'lm_not_configured', 'LMUnavailableError'],
    [new StreamingDisabledError(), 'streaming_disabled', 'StreamingDisabledError'],
    [new BatchTooLargeError(50), 'batch_too_large', 'BatchTooLargeError'],
    [new RequestValidationError([]), 'validation_failed', 'RequestValidationError'],
    [new UnsupportedMediaTypeError('text/plain'), 'unsupported_media_type', 'UnsupportedMediaTypeError'],
  ])('%s has a stable code and its own name', (error: ServiceError, code, name) => {
    expect(error).toBeInstanceOf(ServiceError);
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe(code);
    expect(error.name).toBe(name);
  });

  it('ServiceUnavailableError keeps its detail and retry delay', () => {
    const error = new ServiceUnavailableError('The service is draining.', 7);
    expect(error.message).toBe('The service is draining.');
    expect(error.retryAfterSeconds).toBe(7);
  });

  it('LMUnavailableError names the variables to set by default, or takes a specific detail', () => {
    const detail = new LMUnavailableError().message;
    for (const name of ['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'DSPY_MODEL']) expect(detail).toContain(name);
    expect(new LMUnavailableError('OPENAI_API_KEY is not set').message).toBe('OPENAI_API_KEY is not set');
  });

  it("StreamingDisabledError keeps the seed's wording", () => {
    expect(new StreamingDisabledError().message).toBe('Streaming not enabled');
  });

  it('BatchTooLargeError states the limit', () => {
    const error = new BatchTooLargeError(25);
    expect(error.max).toBe(25);
    expect(error.message).toBe('A batch holds at most 25 questions.');
  });

  it('RequestValidationError joins the field messages', () => {
    const error = new RequestValidationError([
      { field: 'question', message: 'question must be a string' },
      { field: 'extra', message: 'property extra should not exist' },
    ]);
    expect(error.message).toBe('question must be a string; property extra should not exist');
    expect(error.errors).toHaveLength(2);
  });

  it('UnsupportedMediaTypeError quotes a bounded Content-Type, or none', () => {
    expect(new UnsupportedMediaTypeError('text/plain').message).toBe(
      'Content-Type must be application/json, not "text/plain".',
    );
    expect(new UnsupportedMediaTypeError('x'.repeat(1000)).message.length).toBeLessThan(160);
    expect(new UnsupportedMediaTypeError(undefined).message).toBe('Content-Type must be application/json.');
  });
});
