import type { Response } from 'express';
import { EventEmitter } from 'node:events';
import { Observable } from 'rxjs';
import { LMRateLimitError, LMServerError, LMTimeoutError } from '../dspy';
import { ServiceDrainingError } from '../common/errors/service-errors';
import { clientSignal, disconnectRouteOf, errorEvent, writeSse } from './sse';

/** The parts of an Express response these helpers use. */
function fakeResponse(path: string, closed = false) {
  const res = Object.assign(new EventEmitter(), {
    req: { route: { path }, path },
    closed,
    destroyed: closed,
    writableEnded: false,
    writableFinished: false,
    written: [] as string[],
    status: () => res,
    setHeader: () => undefined,
    flushHeaders: () => undefined,
    socket: null,
    corked: 0,
    cork: () => void res.corked++,
    uncork: () => void res.corked--,
    write: (chunk: string) => res.written.push(chunk),
    end: (chunk: string) => {
      res.written.push(chunk);
      res.writableEnded = true;
      res.writableFinished = true;
    },
  });
  return res;
}

describe('clientSignal', () => {
  it('aborts when the client leaves before the response is complete, and knows its route', () => {
    const res = fakeResponse('/predict/stream');
    const signal = clientSignal(res as unknown as Response);
    expect(disconnectRouteOf(signal)).toBe('stream');
    expect(signal.aborted).toBe(false);
    res.closed = true;
    res.emit('close');
    expect(signal.aborted).toBe(true);
  });

  it('does not abort on the close that follows a complete response', () => {
    const res = fakeResponse('/batch');
    const signal = clientSignal(res as unknown as Response);
    expect(disconnectRouteOf(signal)).toBe('batch');
    res.writableFinished = true;
    res.emit('close');
    expect(signal.aborted).toBe(false);
  });

  it('is aborted at once for a client that already left (its close event is gone)', () => {
    const signal = clientSignal(fakeResponse('/predict', true) as unknown as Response);
    expect(signal.aborted).toBe(true);
    expect(disconnectRouteOf(signal)).toBe('predict');
  });

  it('names no route outside the LM-backed ones', () => {
    expect(disconnectRouteOf(clientSignal(fakeResponse('/health') as unknown as Response))).toBeUndefined();
    expect(disconnectRouteOf(undefined)).toBeUndefined();
  });
});

describe('writeSse', () => {
  /** An event source that records whether its subscriber went away. */
  function source() {
    const state = { unsubscribed: false };
    const events = new Observable<object>(() => () => {
      state.unsubscribed = true;
    });
    return { state, events };
  }

  it('stops the work when the client disconnects mid-stream', async () => {
    const res = fakeResponse('/predict/stream');
    const { state, events } = source();
    const done = writeSse(res as unknown as Response, events, 60_000);
    res.closed = true;
    res.emit('close');
    await done;
    expect(state.unsubscribed).toBe(true);
  });

  it('stops the work at once when the client left before the stream began', async () => {
    const res = fakeResponse('/predict/stream', true);
    const { state, events } = source();
    await writeSse(res as unknown as Response, events, 60_000);
    expect(state.unsubscribed).toBe(true);
    expect(res.written).toEqual([]);
  });

  it('ends open streams with the retryable draining event then [DONE] when the drain signal fires', async () => {
    const res = fakeResponse('/predict/stream');
    const { state, events } = source();
    const drain = new AbortController();
    const done = writeSse(res as unknown as Response, events, 60_000, drain.signal);
    drain.abort();
    await done;
    expect(state.unsubscribed).toBe(true);
    const tail = res.written.at(-1) ?? '';
    expect(tail).toMatch(/"code":"service_draining".*"retryable":true/);
    expect(tail.endsWith('data: [DONE]\n\n')).toBe(true);
  });
});

describe('writeSse batching', () => {
  it('writes the events of one burst under one cork, released on the next tick', async () => {
    const res = fakeResponse('/predict/stream');
    const done = writeSse(
      res as unknown as Response,
      new Observable<object>((sub) => {
        sub.next({ type: 'token', content: 'a' });
        sub.next({ type: 'token', content: 'b' });
        expect(res.corked).toBe(1);
        setTimeout(() => sub.complete(), 5);
      }),
      60_000,
    );
    await new Promise((r) => process.nextTick(r));
    expect(res.corked).toBe(0);
    await done;
    expect(res.written).toEqual([
      'data: {"type":"token","content":"a"}\n\n',
      'data: {"type":"token","content":"b"}\n\n',
      'data: [DONE]\n\n',
    ]);
  });
});

describe('errorEvent', () => {
  it('says whether retrying may help, with Retry-After when the problem has one', () => {
    expect(errorEvent(new LMTimeoutError('slow'))).toMatchObject({
      code: 'lm_timeout',
      status: 504,
      retryable: true,
    });
    expect(errorEvent(new LMRateLimitError('busy', { retryAfter: 3 }))).toMatchObject({
      code: 'lm_rate_limited',
      retryable: true,
      retry_after: 3,
    });
    expect(errorEvent(new ServiceDrainingError(2))).toMatchObject({ retryable: true, retry_after: 2 });
    const failed = errorEvent(new LMServerError('boom'));
    expect(failed).toMatchObject({ code: 'lm_server_error', status: 502, retryable: false });
    expect(failed).not.toHaveProperty('retry_after');
  });
});
