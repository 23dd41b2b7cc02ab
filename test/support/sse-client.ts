/**
 * A raw node:http client for many concurrent requests against an app in this process or a spawned one: each
 * request has its own socket (no agent pool to queue behind), the body is collected as it arrives, and the test
 * can disconnect at any point — after the first SSE token, say — as a real client that goes away does.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export interface Target {
  port: number;
  host?: string;
}

export interface RawExchange {
  /** Resolves with the status and headers once the response head arrives; rejects if the connection fails first. */
  readonly head: Promise<{ status: number; headers: IncomingHttpHeaders }>;
  /** Everything received so far. */
  readonly text: string;
  /** Resolves with the text once `condition(text)` holds; rejects if the response ends or fails first. */
  until(condition: (text: string) => boolean): Promise<string>;
  /** Resolves with the whole body when the server ends the response, or with what arrived if it breaks. */
  readonly ended: Promise<{ text: string; complete: boolean }>;
  /** Drops the connection. */
  disconnect(): void;
}

/** The first `token` event of an SSE body has arrived. */
export const hasToken = (text: string): boolean => text.includes('"type":"token"');

/** One request with a JSON body (or none) on a socket of its own. */
export function rawRequest(
  target: Target,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): RawExchange {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  let text = '';
  const waiters = new Set<{
    condition: (t: string) => boolean;
    resolve: (t: string) => void;
    reject: (e: Error) => void;
  }>();
  const check = () => {
    for (const w of waiters) {
      if (w.condition(text)) {
        waiters.delete(w);
        w.resolve(text);
      }
    }
  };
  const failWaiters = (why: string) => {
    for (const w of waiters) w.reject(new Error(`${why} before the condition held:\n${text.slice(0, 2000)}`));
    waiters.clear();
  };

  const req = httpRequest({
    host: target.host ?? '127.0.0.1',
    port: target.port,
    method,
    path,
    agent: false,
    headers: {
      ...(payload
        ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
        : {}),
      ...headers,
    },
  });

  let settleEnded!: (value: { text: string; complete: boolean }) => void;
  const ended = new Promise<{ text: string; complete: boolean }>((resolve) => (settleEnded = resolve));
  const head = new Promise<{ status: number; headers: IncomingHttpHeaders }>((resolve, reject) => {
    req.on('response', (res) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        check();
      });
      res.on('end', () => {
        failWaiters('the response ended');
        settleEnded({ text, complete: true });
      });
      res.on('error', () => undefined);
      res.on('close', () => {
        failWaiters('the connection closed');
        settleEnded({ text, complete: res.complete });
      });
    });
    req.on('error', (error) => {
      reject(error);
      failWaiters(`the request failed (${error.message})`);
      settleEnded({ text, complete: false });
    });
  });
  // A test that disconnects on purpose does not care about the resulting socket error.
  head.catch(() => undefined);
  req.end(payload);

  return {
    head,
    get text() {
      return text;
    },
    until(condition) {
      if (condition(text)) return Promise.resolve(text);
      return new Promise<string>((resolve, reject) => waiters.add({ condition, resolve, reject }));
    },
    ended,
    disconnect: () => req.destroy(),
  };
}
