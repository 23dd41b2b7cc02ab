import { LMInvalidRequestError, LMServerError, type LMProvider, type LMRequest } from '../dspy';
import { ServiceUnavailableError } from '../common/errors/service-errors';
import { CircuitBreakerProvider } from './resilient-provider';

function fakeProvider(outcomes: Array<'ok' | Error>): LMProvider & { calls: number } {
  const provider = {
    calls: 0,
    complete() {
      const outcome = outcomes[provider.calls++] ?? 'ok';
      return outcome === 'ok'
        ? Promise.resolve({ outputs: [], usage: {}, model: 'm' } as never)
        : Promise.reject(outcome);
    },
    async *stream() {
      const outcome = outcomes[provider.calls++] ?? 'ok';
      yield { text: 'a' } as never;
      if (outcome !== 'ok') throw outcome;
    },
  };
  return provider;
}

const request = {} as LMRequest;
const fail = () => new LMServerError('boom');

describe('CircuitBreakerProvider', () => {
  let now = 0;
  const clock = () => now;
  beforeEach(() => (now = 0));

  it('opens after the threshold, fails fast with a Retry-After, re-opens when the half-open trial fails', async () => {
    const inner = fakeProvider([fail(), fail(), fail()]);
    const breaker = new CircuitBreakerProvider(inner, { failureThreshold: 2, openMs: 5000, now: clock });
    await expect(breaker.complete(request)).rejects.toBeInstanceOf(LMServerError);
    await expect(breaker.complete(request)).rejects.toBeInstanceOf(LMServerError);
    expect(breaker.circuit).toBe('open');
    now = 1000;
    const refused = await breaker.complete(request).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ServiceUnavailableError);
    expect((refused as ServiceUnavailableError).retryAfterSeconds).toBe(4);
    expect(inner.calls).toBe(2);
    now = 5000;
    expect(breaker.circuit).toBe('half-open');
    await expect(breaker.complete(request)).rejects.toBeInstanceOf(LMServerError);
    expect(inner.calls).toBe(3);
    expect(breaker.circuit).toBe('open');
    now = 10_000;
    await expect(breaker.complete(request)).resolves.toBeDefined();
    expect(breaker.circuit).toBe('closed');
  });

  it('lets only one trial through while half-open', async () => {
    const inner = fakeProvider([fail()]);
    const breaker = new CircuitBreakerProvider(inner, { failureThreshold: 1, openMs: 10, now: clock });
    await expect(breaker.complete(request)).rejects.toBeInstanceOf(LMServerError);
    now = 10;
    const trial = breaker.complete(request);
    await expect(breaker.complete(request)).rejects.toBeInstanceOf(ServiceUnavailableError);
    await expect(trial).resolves.toBeDefined();
  });

  it('does not count client errors, and a threshold of 0 disables it', async () => {
    const inner = fakeProvider([new LMInvalidRequestError('bad'), new LMInvalidRequestError('bad')]);
    const breaker = new CircuitBreakerProvider(inner, { failureThreshold: 1, openMs: 10, now: clock });
    await expect(breaker.complete(request)).rejects.toBeInstanceOf(LMInvalidRequestError);
    expect(breaker.circuit).toBe('closed');
    const off = new CircuitBreakerProvider(fakeProvider([fail(), fail()]), {
      failureThreshold: 0,
      openMs: 10,
    });
    await expect(off.complete(request)).rejects.toBeInstanceOf(LMServerError);
    await expect(off.complete(request)).rejects.toBeInstanceOf(LMServerError);
  });

  it('counts a stream that fails mid-way and never retries it', async () => {
    const inner = fakeProvider([fail()]);
    const breaker = new CircuitBreakerProvider(inner, { failureThreshold: 1, openMs: 10, now: clock });
    const chunks: unknown[] = [];
    await expect(
      (async () => {
        for await (const c of breaker.stream(request)) chunks.push(c);
      })(),
    ).rejects.toBeInstanceOf(LMServerError);
    expect(chunks).toHaveLength(1);
    expect(inner.calls).toBe(1);
    expect(breaker.circuit).toBe('open');
  });

  it('tells its listeners of each opening and each refused call (the metrics)', async () => {
    const inner = fakeProvider([fail(), fail(), fail(), fail()]);
    const breaker = new CircuitBreakerProvider(inner, { failureThreshold: 2, openMs: 1000, now: clock });
    const events: string[] = [];
    breaker.addListener({ opened: () => events.push('opened'), rejected: () => events.push('rejected') });
    await expect(breaker.complete(request)).rejects.toBeInstanceOf(LMServerError);
    expect(events).toEqual([]);
    await expect(breaker.complete(request)).rejects.toBeInstanceOf(LMServerError);
    expect(events).toEqual(['opened']);
    await expect(breaker.complete(request)).rejects.toBeInstanceOf(ServiceUnavailableError);
    await expect(breaker.complete(request)).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(events).toEqual(['opened', 'rejected', 'rejected']);
    expect(breaker.rejected).toBe(2);
    now = 1000;
    // The failed trial opens it again: a second opening.
    await expect(breaker.complete(request)).rejects.toBeInstanceOf(LMServerError);
    expect(events).toEqual(['opened', 'rejected', 'rejected', 'opened']);
  });

  it('counts one opening when calls admitted before it opened fail after', async () => {
    let failNext!: (e: Error) => void;
    const inner: LMProvider = {
      complete: () => new Promise((_, reject) => (failNext = reject)),
      // eslint-disable-next-line require-yield
      async *stream() {
        throw fail();
      },
    };
    const breaker = new CircuitBreakerProvider(inner, { failureThreshold: 1, openMs: 1000, now: clock });
    let opened = 0;
    breaker.addListener({ opened: () => opened++ });
    const first = breaker.complete(request);
    const firstFail = failNext;
    const second = breaker.complete(request);
    const secondFail = failNext;
    firstFail(fail());
    await expect(first).rejects.toBeInstanceOf(LMServerError);
    secondFail(fail());
    await expect(second).rejects.toBeInstanceOf(LMServerError);
    expect(breaker.circuit).toBe('open');
    expect(opened).toBe(1);
  });
});
