import { Logger } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import { FailOpenThrottlerStorage } from './fail-open-storage';

const record = (totalHits: number) => ({
  totalHits,
  timeToExpire: 60,
  isBlocked: false,
  timeToBlockExpire: 0,
});

/** A store whose behaviour the test switches: answer, fail at once, or never answer. */
function switchable(): ThrottlerStorage & { mode: 'ok' | 'fail' | 'hang'; calls: number } {
  const store = {
    mode: 'ok' as 'ok' | 'fail' | 'hang',
    calls: 0,
    increment() {
      store.calls++;
      if (store.mode === 'fail') return Promise.reject(new Error('connection refused'));
      if (store.mode === 'hang') return new Promise<never>(() => undefined);
      return Promise.resolve(record(1));
    },
  };
  return store;
}

describe('FailOpenThrottlerStorage', () => {
  let now = 0;
  let primary: ReturnType<typeof switchable>;
  let fallback: ThrottlerStorage & { calls: number };
  let storage: FailOpenThrottlerStorage;
  const inc = () => storage.increment('k', 60_000, 10, 0, 'default');
  // The outage warning is expected here.
  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(() => {
    now = 0;
    primary = switchable();
    fallback = {
      calls: 0,
      increment: () => {
        fallback.calls++;
        return Promise.resolve(record(fallback.calls));
      },
    };
    storage = new FailOpenThrottlerStorage(primary, fallback, 20, undefined, 1000, () => now);
  });

  it('counts in Redis while it answers', async () => {
    await inc();
    await inc();
    expect(primary.calls).toBe(2);
    expect(fallback.calls).toBe(0);
    expect(storage.fallingBack).toBe(false);
  });

  it('after a failure counts in-process without asking Redis until the retry time, then probes and recovers', async () => {
    primary.mode = 'fail';
    expect((await inc()).totalHits).toBe(1);
    expect(storage.fallingBack).toBe(true);
    for (let i = 0; i < 5; i++) await inc();
    expect(primary.calls).toBe(1);
    expect(fallback.calls).toBe(6);

    now = 1000;
    await inc();
    expect(primary.calls).toBe(2);
    expect(storage.fallingBack).toBe(true);

    primary.mode = 'ok';
    now = 2000;
    await inc();
    expect(primary.calls).toBe(3);
    expect(storage.fallingBack).toBe(false);
    await inc();
    expect(primary.calls).toBe(4);
  });

  it('a frozen Redis costs one timeout, then requests skip it; one probe at a time while it is tried again', async () => {
    primary.mode = 'hang';
    const started = Date.now();
    await inc();
    expect(Date.now() - started).toBeGreaterThanOrEqual(15);
    expect(storage.fallingBack).toBe(true);

    now = 1000;
    const probe = inc();
    // While the probe waits on the frozen Redis, the others do not.
    await inc();
    await inc();
    expect(primary.calls).toBe(2);
    await probe;
    expect(fallback.calls).toBe(4);
  });
});
