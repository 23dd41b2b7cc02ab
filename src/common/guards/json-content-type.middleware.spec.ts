import type { IncomingMessage, ServerResponse } from 'node:http';
import { UnsupportedMediaTypeError } from '../errors/service-errors';
import { JsonContentTypeMiddleware } from './json-content-type.middleware';

const request = (headers: Record<string, string | undefined>) => ({ headers }) as unknown as IncomingMessage;
const response = {} as ServerResponse;

describe('JsonContentTypeMiddleware', () => {
  const middleware = new JsonContentTypeMiddleware();

  it.each([
    { 'content-type': 'application/json', 'content-length': '20' },
    { 'content-type': 'application/json; charset=utf-8', 'content-length': '20' },
    { 'content-type': 'Application/JSON;charset=UTF-8', 'transfer-encoding': 'chunked' },
  ])('lets a JSON body through: %o', (headers) => {
    const next = jest.fn();
    middleware.use(request(headers), response, next);
    expect(next).toHaveBeenCalledWith();
  });

  it.each([{}, { 'content-length': '0' }, { 'content-length': '0', 'content-type': 'text/plain' }])(
    'lets a request without a body through, for validation to name the missing fields: %o',
    (headers) => {
      const next = jest.fn();
      middleware.use(request(headers), response, next);
      expect(next).toHaveBeenCalledWith();
    },
  );

  it.each([
    ['text/plain', { 'content-type': 'text/plain', 'content-length': '5' }],
    [
      'application/x-www-form-urlencoded',
      { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '5' },
    ],
    ['application/jsonp', { 'content-type': 'application/jsonp', 'content-length': '5' }],
    [undefined, { 'transfer-encoding': 'chunked' }],
  ])('rejects a %s body with UnsupportedMediaTypeError', (contentType, headers) => {
    const next = jest.fn();
    let thrown: unknown;
    try {
      middleware.use(request(headers), response, next);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(UnsupportedMediaTypeError);
    expect((thrown as UnsupportedMediaTypeError).received).toBe(contentType);
    expect(next).not.toHaveBeenCalled();
  });
});
