import type { IncomingMessage } from 'node:http';
import { hasBody, isJsonContentType } from './request-body';

const request = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

describe('hasBody', () => {
  it.each([
    [{ 'content-length': '12' }, true],
    [{ 'transfer-encoding': 'chunked' }, true],
    [{ 'content-length': '0' }, false],
    [{ 'content-length': 'abc' }, false],
    [{}, false],
  ])('%o → %s', (headers, expected) => {
    expect(hasBody(request(headers))).toBe(expected);
  });
});

describe('isJsonContentType', () => {
  it.each([
    ['application/json', true],
    ['application/json; charset=utf-8', true],
    [' APPLICATION/JSON ;charset=UTF-8', true],
    ['application/problem+json', false],
    ['application/jsonx', false],
    ['text/plain', false],
    ['', false],
    [undefined, false],
  ])('%s → %s', (contentType, expected) => {
    expect(isJsonContentType(contentType)).toBe(expected);
  });
});
