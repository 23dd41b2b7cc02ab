/**
 * Assertions and raw-HTTP helpers shared by the e2e suites: the problem+json contract, Server-Sent Events parsing,
 * and requests a test can cut off mid-way (supertest always waits for the whole response).
 */
import { request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Response } from 'supertest';

export const PROBLEM_TYPE_BASE = 'https://errors.dspy-nest-api.dev/';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  request_id: string;
  errors?: { field: string; message: string }[];
}

/** What a stack trace, a source path or a serialized Error would leave in a body. */
const LEAK_PATTERNS = [/\bat \S+ \(/, /\.(?:ts|js):\d+:\d+/, /node_modules/, /"stack"/, /\/src\//];

export function expectNoStackTrace(text: string): void {
  for (const pattern of LEAK_PATTERNS) expect(text).not.toMatch(pattern);
}

/**
 * The RFC 9457 body every error of this API has: exactly `type, title, status, detail, code, request_id` (plus
 * `errors` for validation failures), the request id echoed in `x-request-id`, and nothing from a stack trace.
 */
export function expectProblem(res: Response, status: number, code: string): Problem {
  expect({ status: res.status, body: res.body as unknown }).toMatchObject({ status, body: { code } });
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.body as Problem;
  const { errors, ...standard } = body;
  expect(standard).toEqual({
    type: `${PROBLEM_TYPE_BASE}${code}`,
    title: expect.any(String),
    status,
    detail: expect.any(String),
    code,
    request_id: res.headers['x-request-id'],
  });
  expect(body.title.length).toBeGreaterThan(0);
  expect(body.detail.length).toBeGreaterThan(0);
  if (errors !== undefined) expect(Array.isArray(errors)).toBe(true);
  expectNoStackTrace(res.text);
  return body;
}

export interface ParsedSse {
  /** Every `data:` payload in order, `[DONE]` included. */
  data: string[];
  /** The JSON payloads (everything but `[DONE]`). */
  events: Array<Record<string, any>>;
  /** Comment lines (`: keep-alive`), without the leading colon. */
  comments: string[];
}

export function parseSse(raw: string): ParsedSse {
  const out: ParsedSse = { data: [], events: [], comments: [] };
  for (const block of raw.split('\n\n')) {
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) out.comments.push(line.slice(1).trim());
      else if (line.startsWith('data: ')) {
        const payload = line.slice('data: '.length);
        out.data.push(payload);
        if (payload !== '[DONE]') out.events.push(JSON.parse(payload) as Record<string, any>);
      }
    }
  }
  return out;
}

/** The well-formed end of every stream: exactly one `[DONE]`, and it is the last payload. */
export function expectDoneLast(sse: ParsedSse): void {
  expect(sse.data.at(-1)).toBe('[DONE]');
  expect(sse.data.filter((d) => d === '[DONE]')).toHaveLength(1);
}

export function tokensOf(sse: ParsedSse, field: string): string[] {
  return sse.events.filter((e) => e.type === 'token' && e.field === field).map((e) => e.content as string);
}

export function baseUrl(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export interface OpenRequest {
  /** Resolves with the response head; its body is read with `readUntil`. */
  response: Promise<IncomingMessage>;
  /** Drops the connection, as a client that goes away does. */
  disconnect(): void;
}

/** A raw HTTP request the test can disconnect at any point. */
export function openRequest(server: Server, method: string, path: string, body?: unknown): OpenRequest {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const { port } = server.address() as AddressInfo;
  const req = httpRequest({
    host: '127.0.0.1',
    port,
    method,
    path,
    headers: payload
      ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
      : {},
  });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.on('response', resolve);
    req.on('error', reject);
  });
  // The test disconnects on purpose; the resulting socket error is expected.
  response.catch(() => undefined);
  req.end(payload);
  return { response, disconnect: () => req.destroy() };
}

/** Reads a response body until `done(textSoFar)` holds; rejects if the body ends first. */
export function readUntil(res: IncomingMessage, done: (text: string) => boolean): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (done(text)) {
        res.off('data', onData);
        res.off('end', onEnd);
        resolve(text);
      }
    };
    const onEnd = () => reject(new Error(`the response ended before the condition held:\n${text}`));
    res.on('data', onData);
    res.on('end', onEnd);
  });
}

/** Polls `condition` until it holds; the timeout is a guard against hanging, not a speed assertion. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Probes until `accept` holds and returns the value that passed, or the last one seen after `timeoutMs` (a guard
 * against hanging, not a speed assertion), so the caller's expectation reports what went wrong.
 */
export async function eventually<T>(
  probe: () => Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
