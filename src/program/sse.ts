import type { Response } from 'express';
import type { Observable } from 'rxjs';
import { describeError } from '../common/errors/error-table';
import { ServiceDrainingError } from '../common/errors/service-errors';

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
    const subscription = events.subscribe({
      next: (event) => {
        start();
        if (!res.destroyed) res.write(`data: ${JSON.stringify(event)}\n\n`);
      },
      error: (error: unknown) => {
        if (!started) {
          finished = true;
          clearInterval(heartbeat);
          reject(error instanceof Error ? error : new Error(String(error)));
          return;
        }
        const { code, detail, status } = describeError(error);
        finish(`data: ${JSON.stringify({ type: 'error', code, detail, status })}\n\n`);
      },
      complete: () => finish(''),
    });
    // Shutdown's grace period is over: stop the work and tell the client to retry elsewhere, not cut the socket.
    const onDrain = () => {
      if (finished) return;
      subscription.unsubscribe();
      const { code, detail, status, retryAfter } = describeError(new ServiceDrainingError(1));
      const event = { type: 'error', code, detail, status, retryable: true, retry_after: retryAfter };
      finish(`data: ${JSON.stringify(event)}\n\n`);
    };
    if (drain?.aborted) onDrain();
    else drain?.addEventListener('abort', onDrain, { once: true });
    res.on('close', () => {
      drain?.removeEventListener('abort', onDrain);
      // The client left before the end: stop the work (and the upstream call) behind the stream.
      if (!finished) {
        finished = true;
        clearInterval(heartbeat);
        subscription.unsubscribe();
        resolve();
      }
    });
  });
}

/** An AbortSignal that fires when the client disconnects before the response is complete. */
export function clientSignal(res: Response): AbortSignal {
  const controller = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}
