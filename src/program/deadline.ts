import { LMTimeoutError } from '../dspy';

/**
 * The abort reason of a passed deadline: a `TimeoutError`, as `AbortSignal.timeout()` gives, which the LM layer
 * maps to LMTimeoutError (504 `lm_timeout`); a client that leaves aborts with an `AbortError` (499).
 */
export function deadlineExceeded(ms: number): DOMException {
  return new DOMException(`The request deadline of ${ms} ms passed.`, 'TimeoutError');
}

/**
 * Runs `work` under one overall deadline (REQUEST_DEADLINE_MS). Its signal follows the client's and, once `ms`
 * pass, aborts with a TimeoutError reason every upstream call still in flight, SDK retries and adapter fallbacks
 * included, since they all read this signal. The promise rejects with LMTimeoutError at that moment even if a step
 * does not watch the signal; the work winds down behind it.
 */
export async function withDeadline<T>(
  ms: number,
  clientSignal: AbortSignal | undefined,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const follow = () => controller.abort(clientSignal?.reason);
  if (clientSignal?.aborted) follow();
  else clientSignal?.addEventListener('abort', follow, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const reason = deadlineExceeded(ms);
      controller.abort(reason);
      reject(new LMTimeoutError(reason.message, { cause: reason }));
    }, ms);
  });
  try {
    return await Promise.race([work(controller.signal), expired]);
  } finally {
    clearTimeout(timer);
    clientSignal?.removeEventListener('abort', follow);
  }
}
