import { LM } from '../clients/lm';
import { MemoryLMCache } from '../clients/cache';
import { Predict } from '../predict/predict';
import {
  ContextWindowExceededError,
  LMAuthError,
  LMRateLimitError,
  LMServerError,
  LMTimeoutError,
} from '../utils/exceptions';
import { AdapterParseError } from '../utils/exceptions';
import { settings } from '../utils/settings';
import { BudgetExceededError, isRunEndingError, LMUsageMeter } from './budget';
import { ConcurrencyLimiter, mapConcurrent } from './concurrency';
import { ScriptedProvider } from './testing/scripted-provider';

describe('LMUsageMeter', () => {
  const ask = (lm: LM, q: string) =>
    settings.context({ lm }, () => new Predict('question -> answer').call({ question: q }));

  it('counts upstream calls and tokens per role; cache hits are free', async () => {
    const provider = new ScriptedProvider(() => ({ answer: 'yes' }));
    const base = new LM('openai/test', { provider, cacheStore: new MemoryLMCache() });
    const meter = new LMUsageMeter({ priceOf: (_m, u) => Number(u.total_tokens) / 1000 });
    const task = meter.wrap(base, 'task');
    const prompt = meter.wrap(base, 'prompt');
    await ask(task, 'one');
    await ask(task, 'one');
    await ask(prompt, 'two');
    const s = meter.snapshot();
    expect([s.lmCalls, s.taskLmCalls, s.promptLmCalls, s.failedLmCalls]).toEqual([2, 1, 1, 0]);
    expect(provider.calls).toBe(2);
    expect(s.totalTokens).toBe(s.promptTokens + s.completionTokens);
    expect(s.usd).toBeCloseTo(s.totalTokens / 1000, 8);
  });

  it('refuses calls past maxLmCalls with a BudgetExceededError (an LMError: no adapter fallback)', async () => {
    const provider = new ScriptedProvider(() => ({ answer: 'yes' }));
    const meter = new LMUsageMeter({ limits: { maxLmCalls: 2 } });
    const lm = meter.wrap(new LM('openai/test', { provider, cacheStore: new MemoryLMCache() }), 'task');
    await ask(lm, 'a');
    await ask(lm, 'b');
    expect(meter.exhausted()).toBe('lmCalls');
    await expect(ask(lm, 'c')).rejects.toBeInstanceOf(BudgetExceededError);
    // Still answered from the cache.
    await expect(ask(lm, 'a')).resolves.toBeTruthy();
    expect(provider.calls).toBe(2);
  });

  it('stops at maxUsd once the spend reaches it, and needs a price function for it', async () => {
    const provider = new ScriptedProvider(() => ({ answer: 'yes' }));
    const meter = new LMUsageMeter({ limits: { maxUsd: 0.01 }, priceOf: () => 0.006 });
    const lm = meter.wrap(new LM('openai/test', { provider, cacheStore: new MemoryLMCache() }), 'task');
    await ask(lm, 'a');
    await ask(lm, 'b');
    await expect(ask(lm, 'c')).rejects.toThrow('LM cost budget exhausted');
    expect(() => new LMUsageMeter({ limits: { maxUsd: 1 } })).toThrow('priceOf');
  });

  it('shares one concurrency limit between all wrapped LMs', async () => {
    let active = 0;
    let peak = 0;
    const provider = new ScriptedProvider(async () => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 5));
      active--;
      return { answer: 'ok' };
    });
    const meter = new LMUsageMeter({ concurrency: 2 });
    const base = new LM('openai/test', { provider, cacheStore: new MemoryLMCache() });
    const a = meter.wrap(base, 'task');
    const b = meter.wrap(base, 'prompt');
    await Promise.all([1, 2, 3, 4, 5, 6].map((i) => ask(i % 2 ? a : b, `q${i}`)));
    expect(peak).toBe(2);
    expect(meter.snapshot().lmCalls).toBe(6);
  });
});

describe('concurrency helpers', () => {
  it('limit and keep order', async () => {
    const limiter = new ConcurrencyLimiter(1);
    const order: number[] = [];
    await Promise.all([1, 2, 3].map((i) => limiter.run(async () => order.push(i))));
    expect(order).toEqual([1, 2, 3]);
    expect(await mapConcurrent([3, 1, 2], 2, async (x) => x * 2)).toEqual([6, 2, 4]);
    expect(() => new ConcurrencyLimiter(0)).toThrow();
  });
});

describe('isRunEndingError', () => {
  it('ends the run for outages, budget and auth; not for one bad example', () => {
    expect(isRunEndingError(new LMServerError('x'))).toBe(true);
    expect(isRunEndingError(new LMTimeoutError('x'))).toBe(true);
    expect(isRunEndingError(new LMRateLimitError('x'))).toBe(true);
    expect(isRunEndingError(new LMAuthError('x'))).toBe(true);
    expect(isRunEndingError(new BudgetExceededError('x', 'lmCalls'))).toBe(true);
    expect(isRunEndingError(new ContextWindowExceededError('x'))).toBe(false);
    expect(
      isRunEndingError(
        new AdapterParseError({ adapterName: 'ChatAdapter', expectedFields: [], lmResponse: '' }),
      ),
    ).toBe(false);
    expect(isRunEndingError(new Error('metric bug'))).toBe(false);
  });
});
