/** A cache operation that did not settle within its budget. */
export class CacheTimeoutError extends Error {
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
  ) {
    super(`${what} timed out after ${timeoutMs} ms`);
    this.name = 'CacheTimeoutError';
  }
}

/**
 * Settles with the promise, or rejects with {@link CacheTimeoutError} after `timeoutMs`. The timer is cleared as
 * soon as the promise settles, and a late rejection of the abandoned promise is handled (never unhandled).
 */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number | undefined, what: string): Promise<T> {
  if (timeoutMs === undefined || !Number.isFinite(timeoutMs) || timeoutMs <= 0) return promise;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new CacheTimeoutError(what, timeoutMs)), timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        // Passed through as is: errors from native addons may not be `instanceof Error` in this realm.
        const reason = error as Error;
        reject(reason);
      },
    );
  });
}
