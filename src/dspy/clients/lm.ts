import { LMAbortedError, LMConfigurationError } from '../utils/exceptions';
import { PyFloat } from '../utils/python';
import { settings } from '../utils/settings';
import type { CachedCompletion, LMCache } from './cache';
import { cacheKey, FN_IDENTIFIER } from './cache-key';
import { abortError } from './provider-errors';
import type { ChatMessage, LMCallOptions, LMProvider, LMResponse, LMStreamChunk, Usage } from './types';

export interface LMOptions {
  /** Provider transport; omitted only for an LM restored from state before a provider is attached. */
  provider?: LMProvider;
  modelType?: 'chat';
  temperature?: number | null;
  maxTokens?: number | null;
  /** `cache=False` bypasses the cache entirely: nothing is read or written. */
  cache?: boolean;
  /** Kept for DSPy's saved state; the provider does the retrying (one retry layer). */
  numRetries?: number;
  /** Overrides `settings.cache` for this LM. */
  cacheStore?: LMCache | null;
  /** Which DSPy call path the cache key names: Python's `acall` (async) or `__call__` (sync). */
  fnIdentifier?: keyof typeof FN_IDENTIFIER;
  /** Whether the endpoint accepts `response_format` at all (litellm `get_supported_openai_params`). */
  supportsResponseFormat?: boolean;
  /** Whether it accepts a JSON-schema `response_format` (litellm `supports_response_schema`). */
  supportsResponseSchema?: boolean;
  /** Other request parameters (top_p, stop, n…), passed straight through like DSPy's `**kwargs`. */
  kwargs?: Record<string, unknown>;
  /** Entries kept in `history` (DSPy keeps every call forever; a server cannot). */
  historySize?: number;
  /**
   * Store a fresh answer only once `accept` (the adapter's parse) succeeded, so a malformed answer is never served
   * from the cache. Off by default to match DSPy, which caches the raw response first.
   */
  cacheOnlyAccepted?: boolean;
  /** Told about every call once it ends (metrics); must not throw. */
  onCall?: (event: LMCallEvent) => void;
}

export interface LMCallEvent {
  model: string;
  /** `aborted`: the caller cancelled (a client that left), which says nothing about the upstream's health. */
  outcome: 'ok' | 'cache_hit' | 'error' | 'aborted';
  seconds: number;
  /** Billed usage (`{}` on a hit). */
  usage: Usage;
  error?: unknown;
}

export interface LMHistoryEntry {
  messages: ChatMessage[];
  kwargs: Record<string, unknown>;
  outputs: string[];
  usage: Usage;
  cacheHit: boolean;
  model: string;
  responseModel: string | null;
  timestamp: string;
}

export interface LMCallExtras extends LMCallOptions {
  /** Parses the outputs (throwing when they are unusable); its result comes back as `response.accepted`. */
  accept?: (outputs: string[]) => unknown;
  /** Stream the provider's deltas to this callback (misses only: a cache hit streams nothing, as in DSPy). */
  onChunk?: (chunk: LMStreamChunk) => void;
}

/** DSPy `LM._get_initial_kwargs` reasoning-family check (o1/o3/o4/o5, gpt-5 but not gpt-5-chat). */
export function isReasoningModel(model: string): boolean {
  const family = (model.includes('/') ? model.split('/').pop()! : model).toLowerCase();
  return /^(?:o[1345]|gpt-5)(?:-(?:mini|nano))?/.test(family) && !family.startsWith('gpt-5-chat');
}

/** Parameters Python users write as floats; wrapping keeps `0.0`/`1.0` in cache keys and saved state. */
const FLOAT_PARAMS = new Set(['temperature', 'top_p', 'presence_penalty', 'frequency_penalty']);

export function asPythonFloats(kwargs: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(kwargs))
    out[k] = FLOAT_PARAMS.has(k) && typeof v === 'number' ? new PyFloat(v) : v;
  return out;
}

/**
 * `dspy.LM`: a model name, default request kwargs, the cache, usage tracking and history around a provider.
 * `call()` is DSPy's `LM.forward` + `request_cache` + `_process_lm_response`.
 */
export class LM {
  readonly model: string;
  readonly modelType: 'chat';
  readonly cache: boolean;
  readonly numRetries: number;
  readonly kwargs: Record<string, unknown>;
  readonly supportsResponseFormat: boolean;
  readonly supportsResponseSchema: boolean;
  readonly history: LMHistoryEntry[] = [];
  private readonly inflight = new Map<
    string,
    { pending: Promise<Omit<LMResponse, 'cacheHit' | 'savedUsage'>>; signal: AbortSignal | undefined }
  >();
  provider: LMProvider | undefined;
  private readonly cacheStore: LMCache | null | undefined;
  private readonly fnIdentifier: string;
  private readonly historySize: number;
  private readonly onCall: ((event: LMCallEvent) => void) | undefined;
  private readonly cacheOnlyAccepted: boolean;

  constructor(model: string, options: LMOptions = {}) {
    if (!model || typeof model !== 'string')
      throw new LMConfigurationError('LM model name must be a non-empty string');
    this.model = model;
    this.modelType = options.modelType ?? 'chat';
    this.cache = options.cache ?? true;
    this.numRetries = options.numRetries ?? 3;
    this.provider = options.provider;
    this.cacheStore = options.cacheStore;
    this.fnIdentifier = FN_IDENTIFIER[options.fnIdentifier ?? 'async'];
    this.supportsResponseFormat = options.supportsResponseFormat ?? true;
    this.supportsResponseSchema = options.supportsResponseSchema ?? true;
    this.historySize = options.historySize ?? 100;
    this.onCall = options.onCall;
    this.cacheOnlyAccepted = options.cacheOnlyAccepted ?? false;
    const temperature = options.temperature ?? null;
    const maxTokens = options.maxTokens ?? null;
    const extra = asPythonFloats(options.kwargs ?? {});
    if (isReasoningModel(model)) {
      if ((temperature && temperature !== 1.0) || (maxTokens && maxTokens < 16000)) {
        throw new LMConfigurationError(
          'OpenAI reasoning models require passing temperature=1.0 or None and max_tokens >= 16000 or None',
          { model },
        );
      }
      this.kwargs = { temperature: floatOrNull(temperature), max_completion_tokens: maxTokens, ...extra };
    } else {
      this.kwargs = { temperature: floatOrNull(temperature), max_tokens: maxTokens, ...extra };
    }
  }

  /** The cache tier this LM reads and writes, or null when caching is off for it. */
  private store(): LMCache | null {
    if (!this.cache) return null;
    return this.cacheStore === undefined ? settings.get('cache') : this.cacheStore;
  }

  /** The request dict DSPy hashes: model, messages and merged kwargs (nulls included), plus `_fn_identifier`. */
  cacheRequest(messages: ChatMessage[], config: Record<string, unknown> = {}): Record<string, unknown> {
    const { cache: _cache, ...rest } = config;
    const kwargs: Record<string, unknown> = { ...this.kwargs, ...asPythonFloats(rest) };
    if (kwargs.rollout_id === null || kwargs.rollout_id === undefined) delete kwargs.rollout_id;
    return { model: this.model, messages, ...kwargs, _fn_identifier: this.fnIdentifier };
  }

  async call(
    messages: ChatMessage[],
    config: Record<string, unknown> = {},
    extras: LMCallExtras = {},
  ): Promise<LMResponse> {
    if (!this.onCall) return this.callInner(messages, config, extras);
    const started = performance.now();
    try {
      const response = await this.callInner(messages, config, extras);
      const outcome = response.cacheHit ? 'cache_hit' : 'ok';
      this.onCall({
        model: this.model,
        outcome,
        seconds: (performance.now() - started) / 1000,
        usage: response.usage,
      });
      return response;
    } catch (error) {
      this.onCall({
        model: this.model,
        outcome: error instanceof LMAbortedError ? 'aborted' : 'error',
        seconds: (performance.now() - started) / 1000,
        usage: {},
        error,
      });
      throw error;
    }
  }

  private async callInner(
    messages: ChatMessage[],
    config: Record<string, unknown>,
    extras: LMCallExtras,
  ): Promise<LMResponse> {
    const ctx = settings.callContext();
    const signal = extras.signal ?? ctx?.signal;
    if (signal?.aborted) throw abortError(signal.reason, 'the request was cancelled', { model: this.model });
    const useCache = config.cache !== false;
    const store = useCache ? this.store() : null;
    const request = this.cacheRequest(messages, config);
    const { _fn_identifier: _id, model: _model, messages: _messages, ...keyed } = request;
    const kwargs = plainNumbers(keyed);
    const key = store ? cacheKey(request) : null;

    let response: LMResponse | undefined;
    let rejected: { error: unknown } | undefined;
    if (store && key && !ctx?.refreshCache) {
      const hit = await store.get(key);
      if (hit) response = asHit(hit);
    }
    if (!response && key && this.inflight.has(key)) {
      response = await this.joinInflight(key);
    }
    if (!response) {
      const provider = this.provider;
      if (!provider)
        throw new LMConfigurationError('this LM has no provider configured', { model: this.model });
      const pending = extras.onChunk
        ? this.streamCompletion(provider, { model: this.model, messages, kwargs }, signal, extras.onChunk)
        : provider.complete({ model: this.model, messages, kwargs }, { signal });
      if (key) this.inflight.set(key, { pending, signal });
      try {
        const fresh = await pending;
        response = { ...fresh, savedUsage: null, cacheHit: false };
        // Parsing before storing keeps an unparseable answer out of the cache, where it would pin the failure
        // for every retry (DSPy stores first; fixture errors/chat_and_json_parse_failure records those writes).
        if (this.cacheOnlyAccepted && extras.accept) {
          try {
            response.accepted = extras.accept(fresh.outputs);
          } catch (error) {
            rejected = { error };
          }
        }
        if (store && key && !rejected) {
          await store.put(key, {
            outputs: fresh.outputs,
            usage: fresh.usage,
            responseModel: fresh.responseModel,
            finishReasons: fresh.finishReasons,
          });
        }
      } finally {
        if (key && this.inflight.get(key)?.pending === pending) this.inflight.delete(key);
      }
    } else if (extras.onChunk && ctx?.replayCachedStreams) {
      replayAsChunks(response.outputs[0] ?? '', extras.onChunk);
    }

    ctx?.usageTracker?.add(this.model, response.usage);
    ctx?.usageTracker?.recordCall(this.model, response.cacheHit, response.savedUsage);
    this.record(messages, kwargs, response);
    // The tokens of a call whose answer cannot be parsed are still billed: usage is counted before this throws.
    if (rejected) throw rejected.error;
    if (extras.accept && !('accepted' in response)) response.accepted = extras.accept(response.outputs);
    return response;
  }

  /**
   * Identical concurrent misses share one upstream call. The followers are billed nothing, like a cache hit. If
   * the leader's own client cancelled or its own deadline passed, a follower is answered by the cache or makes its
   * own call instead.
   */
  private async joinInflight(key: string): Promise<LMResponse | undefined> {
    const leader = this.inflight.get(key)!;
    try {
      const shared = await leader.pending;
      return { ...shared, usage: {}, savedUsage: shared.usage, cacheHit: true };
    } catch (error) {
      if (error instanceof LMAbortedError || leader.signal?.aborted) return undefined;
      throw error;
    }
  }

  private async streamCompletion(
    provider: LMProvider,
    request: { model: string; messages: ChatMessage[]; kwargs: Record<string, unknown> },
    signal: AbortSignal | undefined,
    onChunk: (chunk: LMStreamChunk) => void,
  ): Promise<Omit<LMResponse, 'cacheHit' | 'savedUsage'>> {
    let text = '';
    let usage: Usage = {};
    let responseModel: string | null = null;
    let finishReason: string | null = null;
    let deltas = 0;
    try {
      for await (const chunk of provider.stream(request, { signal })) {
        text += chunk.text;
        if (chunk.text) deltas++;
        if (chunk.usage) usage = chunk.usage;
        if (chunk.responseModel) responseModel = chunk.responseModel;
        if (chunk.finishReason) finishReason = chunk.finishReason;
        onChunk(chunk);
      }
    } catch (error) {
      // The provider reports usage in the last chunk, so a stream cut short (client gone, timeout, reset) never
      // says what it cost, yet the tokens it sent are billed. Count an estimate rather than nothing.
      if (deltas > 0)
        settings.callContext()?.usageTracker?.add(this.model, estimateUsage(request.messages, deltas));
      throw error;
    }
    return { outputs: [text], usage, responseModel, finishReasons: [finishReason] };
  }

  private record(messages: ChatMessage[], kwargs: Record<string, unknown>, response: LMResponse): void {
    if (this.historySize <= 0) return;
    this.history.push({
      messages,
      kwargs,
      outputs: response.outputs,
      usage: response.usage,
      cacheHit: response.cacheHit,
      model: this.model,
      responseModel: response.responseModel,
      timestamp: new Date().toISOString(),
    });
    if (this.history.length > this.historySize)
      this.history.splice(0, this.history.length - this.historySize);
  }

  /** A copy with other settings (DSPy `lm.copy(**kwargs)`), sharing the provider. */
  copy(overrides: Partial<LMOptions> = {}): LM {
    const { temperature, max_tokens, max_completion_tokens, ...rest } = this.kwargs;
    return new LM(this.model, {
      provider: this.provider,
      modelType: this.modelType,
      cache: this.cache,
      numRetries: this.numRetries,
      cacheStore: this.cacheStore,
      fnIdentifier: this.fnIdentifier === FN_IDENTIFIER.sync ? 'sync' : 'async',
      supportsResponseFormat: this.supportsResponseFormat,
      supportsResponseSchema: this.supportsResponseSchema,
      historySize: this.historySize,
      onCall: this.onCall,
      cacheOnlyAccepted: this.cacheOnlyAccepted,
      temperature: temperature === null || temperature === undefined ? null : Number(temperature),
      maxTokens: (max_tokens ?? max_completion_tokens ?? null) as number | null,
      kwargs: rest,
      ...overrides,
    });
  }

  /** DSPy `LM.dump_state`, key order included; `api_key` is never saved. */
  dumpState(): Record<string, unknown> {
    const { api_key: _k, ...kwargs } = this.kwargs;
    return {
      _dspy_lm_class: 'dspy.clients.lm.LM',
      model: this.model,
      model_type: this.modelType,
      cache: this.cache,
      num_retries: this.numRetries,
      ...kwargs,
      finetuning_model: null,
      launch_kwargs: {},
      train_kwargs: {},
    };
  }

  /**
   * Rebuild an LM from saved state (DSPy `LM(**state)`). `api_base`/`base_url`/`model_list` are dropped
   * unless `allowUnsafeLmState`, as in DSPy: a state file must not redirect traffic to another endpoint.
   */
  static fromState(
    state: Record<string, unknown>,
    options: { provider?: LMProvider; allowUnsafeLmState?: boolean } = {},
  ): LM {
    const {
      _dspy_lm_class: _cls,
      model,
      model_type: _modelType,
      cache,
      num_retries,
      temperature,
      max_tokens,
      max_completion_tokens,
      finetuning_model: _f,
      launch_kwargs: _l,
      train_kwargs: _t,
      ...rest
    } = state;
    if (typeof model !== 'string') throw new LMConfigurationError('saved LM state has no "model" string');
    if (!options.allowUnsafeLmState) {
      delete rest.api_base;
      delete rest.base_url;
      delete rest.model_list;
    }
    delete rest.api_key;
    return new LM(model, {
      provider: options.provider,
      cache: typeof cache === 'boolean' ? cache : true,
      numRetries: typeof num_retries === 'number' ? num_retries : 3,
      temperature: numberOrNull(temperature),
      maxTokens: numberOrNull(max_tokens) ?? numberOrNull(max_completion_tokens),
      kwargs: rest,
    });
  }
}

/** Providers get plain numbers; PyFloat only matters for hashing and saving. */
function plainNumbers(kwargs: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(kwargs)) out[k] = v instanceof PyFloat ? v.value : v;
  return out;
}

function numberOrNull(value: unknown): number | null {
  if (value instanceof PyFloat) return value.value;
  return typeof value === 'number' ? value : null;
}

function floatOrNull(value: number | null): PyFloat | null {
  return value === null ? null : new PyFloat(value);
}

/**
 * What a stream cut short probably cost: about 4 characters per prompt token, one token per streamed delta (what
 * OpenAI-compatible servers send). Only for streams that never reported their usage.
 */
export function estimateUsage(messages: ChatMessage[], deltas: number): Usage {
  let chars = 0;
  for (const m of messages) chars += typeof m.content === 'string' ? m.content.length : 0;
  const prompt = Math.ceil(chars / 4);
  return { completion_tokens: deltas, prompt_tokens: prompt, total_tokens: prompt + deltas };
}

/** A cached completion as DSPy serves it: billed usage `{}`, the original usage kept as `savedUsage`. */
function asHit(hit: CachedCompletion): LMResponse {
  return { ...cloneCompletion(hit), usage: {}, savedUsage: hit.usage, cacheHit: true };
}

/** Word-sized pieces (text plus its trailing whitespace), so stream listeners see a token stream. */
function replayAsChunks(text: string, onChunk: (chunk: LMStreamChunk) => void): void {
  for (const piece of text.match(/\s*\S+\s*/g) ?? []) onChunk({ text: piece });
}

function cloneCompletion(c: CachedCompletion): Omit<CachedCompletion, 'usage'> {
  return { outputs: [...c.outputs], responseModel: c.responseModel, finishReasons: [...c.finishReasons] };
}
