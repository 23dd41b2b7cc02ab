import type { LMCache, CachedCompletion, LMProvider, LMRequest, LMStreamChunk, Usage } from '../../dspy';
import { MemoryLMCache } from '../../dspy';
import { normalizeUsage } from '../../dspy/clients/openai-provider';

/**
 * The conformance stand-in for litellm, like the fixtures' own recording stub: it records every request and
 * answers with scripted completions (or throws a scripted failure).
 */
export class ScriptedProvider implements LMProvider {
  readonly requests: LMRequest[] = [];
  private index = 0;

  constructor(
    private readonly script: (string | (() => never))[],
    private readonly usage: Usage | null = null,
  ) {}

  async complete(request: LMRequest) {
    this.requests.push(request);
    const next = this.script[Math.min(this.index++, this.script.length - 1)];
    if (typeof next === 'function') next();
    return {
      outputs: [next as string],
      usage: this.usage ? normalizeUsage(this.usage) : {},
      responseModel: request.model.replace(/^openai\//, ''),
      finishReasons: ['stop'],
    };
  }

  // eslint-disable-next-line require-yield
  async *stream(): AsyncIterable<LMStreamChunk> {
    throw new Error('the scripted provider does not stream');
  }
}

/** A cache that records the keys it is asked for and given, like the fixtures' `cache_key_events`. */
export class RecordingCache implements LMCache {
  readonly keys: string[] = [];
  constructor(readonly inner: LMCache = new MemoryLMCache()) {}
  async get(key: string) {
    this.keys.push(key);
    return this.inner.get(key);
  }
  async put(key: string, value: CachedCompletion) {
    this.keys.push(key);
    return this.inner.put(key, value);
  }
}

/** DSPy's two layers (memory LRU over disk) with promotion of a lower hit, for fixture lm/cache_layers. */
export class TwoLayerCache implements LMCache {
  constructor(
    readonly memory = new MemoryLMCache(),
    readonly disk = new MemoryLMCache(),
  ) {}
  async get(key: string) {
    const hit = (await this.memory.get(key)) ?? (await this.disk.get(key));
    if (hit) await this.memory.put(key, hit);
    return hit;
  }
  async put(key: string, value: CachedCompletion) {
    await this.memory.put(key, value);
    await this.disk.put(key, value);
  }
}
