import { ChainOfThought } from '../predict/chain-of-thought';
import { LMAbortedError, LMConfigurationError, LMTimeoutError } from '../utils/exceptions';
import { settings } from '../utils/settings';
import { UsageTracker } from '../utils/usage-tracker';
import { MemoryLMCache } from './cache';
import { cacheKey } from './cache-key';
import { estimateUsage, LM, type LMCallEvent } from './lm';
import type { LMCallOptions, LMProvider, LMRequest, LMStreamChunk } from './types';

const COMPLETION = '[[ ## reasoning ## ]]\nR\n\n[[ ## answer ## ]]\nA\n\n[[ ## completed ## ]]';

class CountingProvider implements LMProvider {
  requests: LMRequest[] = [];
  async complete(request: LMRequest, _options?: LMCallOptions) {
    this.requests.push(request);
    return {
      outputs: [COMPLETION],
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
      responseModel: 'm',
      finishReasons: ['stop'],
    };
  }
  async *stream(request: LMRequest): AsyncIterable<LMStreamChunk> {
    this.requests.push(request);
    for (const text of COMPLETION.match(/.{1,7}/gs)!) yield { text };
    yield { text: '', usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } };
  }
}

describe('LM', () => {
  const run = (lm: LM, config?: Record<string, unknown>) =>
    settings.context({ lm, trackUsage: true }, () =>
      new ChainOfThought('question -> answer').call({ question: 'q', ...(config ? { config } : {}) }),
    );

  it('serves a repeated call from the cache with billed usage {} and the saved usage kept', async () => {
    const provider = new CountingProvider();
    const lm = new LM('openai/test', { provider, cacheStore: new MemoryLMCache() });
    const first = await run(lm);
    const second = await run(lm);
    expect(provider.requests).toHaveLength(1);
    expect(first.getLmUsage()).toEqual({
      'openai/test': { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
    });
    expect(second.getLmUsage()).toEqual({});
    expect(lm.history.at(-1)).toMatchObject({ cacheHit: true, usage: {} });
    expect(second.answer).toBe('A');
  });

  it('misses for a new rollout_id and bypasses the cache with cache=false', async () => {
    const provider = new CountingProvider();
    const store = new MemoryLMCache();
    const lm = new LM('openai/test', { provider, cacheStore: store });
    await run(lm);
    await run(lm, { rollout_id: 1 });
    await run(lm, { rollout_id: 1 });
    await run(lm, { cache: false });
    expect(provider.requests).toHaveLength(3);
    expect(store.size).toBe(2);
    expect(provider.requests[1].kwargs.rollout_id).toBe(1);
  });

  it('hashes floats as Python does, so temperature 1 and 1.0 share DSPy keys', () => {
    const lm = new LM('openai/gpt-4o-mini', { temperature: 1 });
    const request = lm.cacheRequest([{ role: 'user', content: 'hi' }]);
    expect(
      cacheKey({ ...request, _fn_identifier: 'dspy.clients.lm.litellm_completion', max_tokens: 1000 }),
    ).toBe('97b7614da703f0ad23c14a7cb25b86288c88a19c44f2a7505a0ad15d8e0dbab6');
  });

  it('streams deltas to onChunk on a miss and caches the assembled response', async () => {
    const provider = new CountingProvider();
    const lm = new LM('openai/test', { provider, cacheStore: new MemoryLMCache() });
    const seen: string[] = [];
    const response = await lm.call(
      [{ role: 'user', content: 'x' }],
      {},
      { onChunk: (c) => seen.push(c.text) },
    );
    expect(seen.join('')).toBe(COMPLETION);
    expect(response.usage).toEqual({ prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 });
    const again = await lm.call([{ role: 'user', content: 'x' }], {}, { onChunk: (c) => seen.push(c.text) });
    expect(again.cacheHit).toBe(true);
    expect(again.outputs).toEqual([COMPLETION]);
  });

  it('bounds its history', async () => {
    const lm = new LM('openai/test', { provider: new CountingProvider(), cacheStore: null, historySize: 2 });
    for (let i = 0; i < 5; i++) await lm.call([{ role: 'user', content: String(i) }]);
    expect(lm.history.map((h) => h.messages[0].content)).toEqual(['3', '4']);
  });

  it('enforces the reasoning-model rules and renames max_tokens', () => {
    expect(() => new LM('openai/gpt-5-mini', { temperature: 0.2 })).toThrow(LMConfigurationError);
    expect(new LM('openai/o3-mini').kwargs).toHaveProperty('max_completion_tokens', null);
    expect(new LM('openai/gpt-5-chat-latest', { temperature: 0.2 }).kwargs).toHaveProperty(
      'max_tokens',
      null,
    );
  });

  it('never saves the api key', () => {
    const lm = new LM('openai/x', { temperature: 0.3, maxTokens: 1000, kwargs: { api_key: 'sk-secret' } });
    expect(JSON.stringify(lm.dumpState())).not.toContain('sk-secret');
  });

  it('shares one upstream call among identical concurrent misses; followers are billed nothing', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const provider = new CountingProvider();
    const complete = provider.complete.bind(provider);
    provider.complete = async (req) => {
      await gate;
      return complete(req);
    };
    const lm = new LM('openai/test', { provider, cacheStore: new MemoryLMCache() });
    const calls = Array.from({ length: 20 }, () => run(lm));
    await new Promise((r) => setTimeout(r, 10));
    release();
    const preds = await Promise.all(calls);
    expect(provider.requests).toHaveLength(1);
    const billed = preds.filter((p) => Object.keys(p.getLmUsage() ?? {}).length > 0);
    expect(billed).toHaveLength(1);
  });

  it.each([
    {
      why: 'the leader was cancelled',
      error: () => new LMAbortedError('cancelled'),
      reason: undefined,
      leaderError: LMAbortedError,
    },
    {
      // What OpenAIProvider makes of a caller signal aborted with a TimeoutError reason.
      why: "the leader's own deadline passed",
      error: () => new LMTimeoutError('deadline'),
      reason: new DOMException('deadline', 'TimeoutError'),
      leaderError: LMTimeoutError,
    },
  ])('lets a follower make its own call when $why', async ({ error, reason, leaderError }) => {
    const provider = new CountingProvider();
    const complete = provider.complete.bind(provider);
    let first = true;
    provider.complete = async (req, opts) => {
      if (first) {
        first = false;
        await new Promise((_r, reject) => opts?.signal?.addEventListener('abort', () => reject(error())));
      }
      return complete(req);
    };
    const lm = new LM('openai/test', { provider, cacheStore: new MemoryLMCache() });
    const controller = new AbortController();
    const leader = lm.call([{ role: 'user', content: 'x' }], {}, { signal: controller.signal });
    const follower = lm.call([{ role: 'user', content: 'x' }]);
    await new Promise((r) => setTimeout(r, 10));
    controller.abort(reason);
    await expect(leader).rejects.toBeInstanceOf(leaderError);
    await expect(follower).resolves.toMatchObject({ cacheHit: false, outputs: [COMPLETION] });
  });

  it('shares a genuine upstream timeout with its followers', async () => {
    const provider = new CountingProvider();
    let calls = 0;
    provider.complete = async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 10));
      throw new LMTimeoutError('Request timed out.');
    };
    const lm = new LM('openai/test', { provider, cacheStore: new MemoryLMCache() });
    const both = [lm.call([{ role: 'user', content: 'y' }]), lm.call([{ role: 'user', content: 'y' }])];
    for (const call of both) await expect(call).rejects.toBeInstanceOf(LMTimeoutError);
    expect(calls).toBe(1);
  });

  it('refuses a call whose signal already fired: a deadline is a timeout, a departed client an abort', async () => {
    const provider = new CountingProvider();
    const lm = new LM('openai/test', { provider, cacheStore: new MemoryLMCache() });
    const msgs = [{ role: 'user' as const, content: 'z' }];
    const timedOut = AbortSignal.abort(
      new DOMException('The request deadline of 5 ms passed.', 'TimeoutError'),
    );
    await expect(lm.call(msgs, {}, { signal: timedOut })).rejects.toThrow(LMTimeoutError);
    await expect(lm.call(msgs, {}, { signal: AbortSignal.abort() })).rejects.toThrow(LMAbortedError);
    expect(provider.requests).toHaveLength(0);
  });

  it('refreshes instead of reading when the call context asks for it, and replays hits as chunks when asked', async () => {
    const provider = new CountingProvider();
    const lm = new LM('openai/test', { provider, cacheStore: new MemoryLMCache() });
    const msgs = [{ role: 'user' as const, content: 'x' }];
    await lm.call(msgs);
    await settings.runWith({ refreshCache: true }, () => lm.call(msgs));
    expect(provider.requests).toHaveLength(2);
    const silent: string[] = [];
    await lm.call(msgs, {}, { onChunk: (c) => silent.push(c.text) });
    expect(silent).toEqual([]);
    const replayed: string[] = [];
    await settings.runWith({ replayCachedStreams: true }, () =>
      lm.call(msgs, {}, { onChunk: (c) => replayed.push(c.text) }),
    );
    expect(replayed.length).toBeGreaterThan(5);
    expect(replayed.join('')).toBe(COMPLETION);
  });

  it('reports a cancelled call as aborted, not as an upstream error', async () => {
    const events: LMCallEvent[] = [];
    const lm = new LM('openai/test', { provider: new CountingProvider(), onCall: (e) => events.push(e) });
    const controller = new AbortController();
    controller.abort();
    await expect(
      lm.call([{ role: 'user', content: 'q' }], {}, { signal: controller.signal }),
    ).rejects.toThrow(LMAbortedError);
    expect(events.map((e) => e.outcome)).toEqual(['aborted']);
  });

  it('counts an estimate for a stream cut short, which never reported its usage', async () => {
    const messages = [{ role: 'user' as const, content: 'x'.repeat(400) }];
    expect(estimateUsage(messages, 3)).toEqual({
      completion_tokens: 3,
      prompt_tokens: 100,
      total_tokens: 103,
    });
    const provider: LMProvider = {
      complete: () => Promise.reject(new Error('unused')),
      async *stream() {
        yield { text: 'one ' };
        yield { text: 'two ' };
        throw new LMTimeoutError('stalled');
      },
    };
    const lm = new LM('openai/test', { provider });
    const tracker = new UsageTracker();
    await expect(
      settings.runWith({ usageTracker: tracker }, () => lm.call(messages, {}, { onChunk: () => undefined })),
    ).rejects.toThrow(LMTimeoutError);
    expect(tracker.totals()).toEqual({
      'openai/test': { completion_tokens: 2, prompt_tokens: 100, total_tokens: 102 },
    });
  });
});
