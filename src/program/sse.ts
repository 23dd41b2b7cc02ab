import type { Response } from 'express';
import type { Observable } from 'rxjs';
import { describeError } from '../common/errors/error-table';
import { ServiceDrainingError } from '../common/errors/service-errors';
import type { DisconnectRoute } from '../metrics/reliability-metrics';

/**
 * Writes an event Observable as Server-Sent Events in the seed's shape: `data: {json}` per event, then
 * `data: [DONE]`. The headers go out with the first event or heartbeat: a failure before that (the upstream
 * refused at once, e.g. 429) rejects, so the client gets a normal problem+json response with its status and
 * Retry-After; a failure after it is an `error` event then `[DONE]`. Comment heartbeats keep idle proxies from
 * closing the stream; a client that disconnects unsubscribes, which aborts the upstream call.
 */
export function writeSse(
  res: Response,
  events: Observable<object>,
  heartbeatMs: number,
  drain?: AbortSignal,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let started = false;
    let finished = false;
    const start = () => {
      if (started) return;
      started = true;
      res.status(200);
      res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
      res.setHeader('Cache-Control', 'no-cache, no-transform');
      res.setHeader('Connection', 'keep-alive');
      res.setHeader('X-Accel-Buffering', 'no');
      res.flushHeaders();
      res.socket?.setNoDelay(true);
    };
    const heartbeat = setInterval(() => {
      start();
      res.write(': keep-alive\n\n');
    }, heartbeatMs);
    heartbeat.unref();
    const finish = (tail: string) => {
      if (finished) return;
      finished = true;
      clearInterval(heartbeat);
      start();
      if (!res.writableEnded && !res.destroyed) res.end(`${tail}data: [DONE]\n\n`);
      resolve();
    };
    // Events that arrive in one burst (one upstream read yields several deltas within one microtask drain) go out
    // in one write: uncorking on the next tick flushes before any I/O, so no event waits, and the socket sees one
    // syscall per burst instead of one per token.
    let corked = false;
    const uncork = () => {
      corked = false;
      res.uncork();
    };
    const subscription = events.subscribe({
      next: (event) => {
        start();
        if (res.destroyed) return;
        if (!corked) {
          corked = true;
          res.cork();
          process.nextTick(uncork);
        }
        res.write(`data: ${JSON.stringify(event)}\n\n`);
      },
      error: (error: unknown) => {
        if (!started) {
          finished = true;
          clearInterval(heartbeat);
          reject(error instanceof Error ? error : new Error(String(error)));
          return;
        }
        finish(`data: ${JSON.stringify(errorEvent(error))}\n\n`);
      },
      complete: () => finish(''),
    });
    // Shutdown's grace period is over: stop the work and tell the client to retry elsewhere, not cut the socket.
    const onDrain = () => {
      if (finished) return;
      subscription.unsubscribe();
      finish(`data: ${JSON.stringify(errorEvent(new ServiceDrainingError(1)))}\n\n`);
    };
    if (drain?.aborted) onDrain();
    else drain?.addEventListener('abort', onDrain, { once: true });
    const onClose = () => {
      drain?.removeEventListener('abort', onDrain);
      // The client left before the end: stop the work (and the upstream call) behind the stream.
      if (!finished) {
        finished = true;
        clearInterval(heartbeat);
        subscription.unsubscribe();
        resolve();
      }
    };
    // A client that left before the stream began (while the request waited for a slot) emitted 'close' already.
    if (res.closed) onClose();
    else res.on('close', onClose);
  });
}

/**
 * The `error` event of a stream that already began: the problem's code, detail and status, whether retrying the
 * same request may succeed (a rate limit, an unavailable or draining service, an upstream timeout), and the
 * Retry-After seconds a problem response would carry.
 */
export function errorEvent(error: unknown): Record<string, unknown> {
  const { code, detail, status, retryAfter } = describeError(error);
  const retryable = status === 429 || status === 503 || status === 504;
  return {
    type: 'error',
    code,
    detail,
    status,
    retryable,
    ...(retryAfter !== undefined && { retry_after: retryAfter }),
  };
}

const signalRoutes = new WeakMap<AbortSignal, DisconnectRoute>();

/**
 * An AbortSignal that fires when the client disconnects before the response is complete (at once if it already
 * has). The signal remembers its route, so admission control can count the disconnects that abort work.
 */
export function clientSignal(res: Response): AbortSignal {
  const controller = new AbortController();
  const route = routeOf(res);
  if (route) signalRoutes.set(controller.signal, route);
  if (res.closed && !res.writableFinished) controller.abort();
  else
    res.on('close', () => {
      if (!res.writableFinished) controller.abort();
    });
  return controller.signal;
}

/** The route a {@link clientSignal} was made for. */
export function disconnectRouteOf(signal: AbortSignal | undefined): DisconnectRoute | undefined {
  return signal ? signalRoutes.get(signal) : undefined;
}

/** The LM-backed route of this response's request, by Express' matched route (its path without the query). */
function routeOf(res: Response): DisconnectRoute | undefined {
  const req = res.req as Response['req'] | undefined;
  const path = String((req?.route as { path?: unknown } | undefined)?.path ?? req?.path ?? '');
  if (/\/predict\/stream$/.test(path)) return 'stream';
  if (/\/predict$/.test(path)) return 'predict';
  if (/\/batch$/.test(path)) return 'batch';
  return undefined;
}
