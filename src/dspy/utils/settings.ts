import { AsyncLocalStorage } from 'node:async_hooks';
import type { LMCache } from '../clients/cache';
import { MemoryLMCache } from '../clients/cache';
import type { LMStreamChunk } from '../clients/types';
import { UsageTracker } from './usage-tracker';

/** Forward references kept structural so this module does not import the classes that import it. */
export interface SettingsLM {
  readonly model: string;
}
export interface SettingsAdapter {
  readonly name: string;
}

export interface TraceEntry {
  predictor: unknown;
  inputs: Record<string, unknown>;
  prediction: unknown;
}

/** Receives the streamed chunks of the LM calls made by one predictor during a call (DSPy `send_stream`). */
export type StreamSink = (event: { predictor: unknown; adapter: string; chunk: LMStreamChunk }) => void;

export interface Settings {
  lm: SettingsLM | null;
  adapter: SettingsAdapter | null;
  trackUsage: boolean;
  /** The LM response cache consulted under DSPy's cache key; null disables caching globally. */
  cache: LMCache | null;
  /** DSPy caps `settings.trace` at 10 000 entries. */
  maxTraceSize: number;
}

/** Per-call state DSPy keeps in thread-local settings; here it follows the async call chain. */
export interface CallContext {
  overrides?: Partial<Settings>;
  usageTracker?: UsageTracker;
  trace?: TraceEntry[];
  stream?: { sink: StreamSink; predictors?: Set<unknown> };
  signal?: AbortSignal;
  /** Skip cache reads but store the fresh answer (a client's `Cache-Control: no-cache`). Not in DSPy. */
  refreshCache?: boolean;
  /**
   * Replay a cached completion to the stream sink in word-sized chunks, so clients get the same token protocol on
   * a hit. DSPy streams nothing on a hit (fixture streaming/chat_cache_hit_second_call); the service opts in.
   */
  replayCachedStreams?: boolean;
}

const storage = new AsyncLocalStorage<CallContext>();

const globals: Settings = {
  lm: null,
  adapter: null,
  trackUsage: false,
  cache: new MemoryLMCache(),
  maxTraceSize: 10_000,
};

/** DSPy's `dspy.settings` / `dspy.configure` / `dspy.context`. */
export const settings = {
  get<K extends keyof Settings>(key: K): Settings[K] {
    const overrides = storage.getStore()?.overrides;
    return overrides && key in overrides ? (overrides[key] as Settings[K]) : globals[key];
  },
  configure(values: Partial<Settings>): void {
    Object.assign(globals, values);
  },
  /** Run `fn` with settings overridden for its whole async call chain (DSPy `with dspy.context(...)`). */
  context<T>(values: Partial<Settings>, fn: () => T): T {
    const current = storage.getStore() ?? {};
    return storage.run({ ...current, overrides: { ...current.overrides, ...values } }, fn);
  },
  callContext(): CallContext | undefined {
    return storage.getStore();
  },
  runWith<T>(ctx: CallContext, fn: () => T): T {
    return storage.run(ctx, fn);
  },
};
