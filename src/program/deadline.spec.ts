import { LMAbortedError, LMTimeoutError } from '../dspy';
import { abortError } from '../dspy/clients/provider-errors';
import { withDeadline } from './deadline';

/** Work that ends only when its signal fires, rejecting the way the LM layer does. */
function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    const fail = () => reject(abortError(signal.reason, 'aborted'));
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, { once: true });
  });
}

describe('withDeadline', () => {
  it('aborts the work with a TimeoutError reason and rejects with LMTimeoutError once the deadline passes', async () => {
    let seen: AbortSignal | undefined;
    const error: unknown = await withDeadline(30, undefined, (signal) => {
      seen = signal;
      return untilAborted(signal);
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LMTimeoutError);
    expect((error as LMTimeoutError).message).toBe('The request deadline of 30 ms passed.');
    expect(seen?.aborted).toBe(true);
    expect((seen?.reason as DOMException).name).toBe('TimeoutError');
  });

  it('ends on time even when the work ignores its signal', async () => {
    let finish!: (value: string) => void;
    const stubborn = new Promise<string>((resolve) => (finish = resolve));
    await expect(withDeadline(30, undefined, () => stubborn)).rejects.toBeInstanceOf(LMTimeoutError);
    // The late result is dropped, not thrown anywhere.
    finish('late');
  });

  it('passes a client abort through with its own reason: a 499, not a 504', async () => {
    const client = new AbortController();
    const pending = withDeadline(60_000, client.signal, (signal) => untilAborted(signal));
    client.abort();
    await expect(pending).rejects.toBeInstanceOf(LMAbortedError);
  });

  it('starts aborted when the client already left', async () => {
    const error = await withDeadline(60_000, AbortSignal.abort(), (signal) => untilAborted(signal)).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(LMAbortedError);
  });

  it('returns the result and leaves nothing armed when the work finishes first', async () => {
    const client = new AbortController();
    let seen: AbortSignal | undefined;
    const result = await withDeadline(20, client.signal, async (signal) => {
      seen = signal;
      return 'answer';
    });
    expect(result).toBe('answer');
    await new Promise((r) => setTimeout(r, 40));
    client.abort();
    expect(seen?.aborted).toBe(false);
  });
});
