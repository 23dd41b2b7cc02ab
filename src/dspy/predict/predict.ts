import { Adapter, Demo } from '../adapters/base-adapter';
import { ChatAdapter } from '../adapters/chat-adapter';
import { LM } from '../clients/lm';
import type { LMStreamChunk } from '../clients/types';
import { Example } from '../primitives/example';
import { Module, Parameter, StateLoadError } from '../primitives/module';
import { Prediction } from '../primitives/prediction';
import { Signature, SignatureState } from '../signatures/signature';
import { settings } from '../utils/settings';

export interface PredictCallInputs extends Record<string, unknown> {
  /** Per-call LM kwargs (DSPy `config=`): temperature, n, rollout_id, cache… */
  config?: Record<string, unknown>;
  lm?: LM;
}

/** A missing LM (DSPy raises ValueError "No LM is loaded"). */
export class NoLMConfiguredError extends Error {
  constructor() {
    super('No LM is loaded. Configure one with settings.configure({ lm }) or pass lm to the predictor.');
    this.name = 'NoLMConfiguredError';
  }
}

/** DSPy `Predict`: one LM call through the active adapter for one signature, with demos. */
export class Predict extends Module implements Parameter {
  readonly isParameter = true as const;
  signature: Signature;
  demos: Demo[] = [];
  lm: LM | null = null;
  config: Record<string, unknown>;
  traces: unknown[] = [];
  train: unknown[] = [];

  constructor(signature: Signature | string, config: Record<string, unknown> = {}) {
    super();
    this.signature = typeof signature === 'string' ? Signature.parse(signature) : signature;
    this.config = config;
  }

  reset(): void {
    this.lm = null;
    this.traces = [];
    this.train = [];
    this.demos = [];
  }

  async forward(inputs: PredictCallInputs): Promise<Prediction> {
    const { config: callConfig, lm: callLm, ...fields } = inputs;
    const config: Record<string, unknown> = { ...this.config, ...(callConfig ?? {}) };
    const lm = callLm ?? this.lm ?? (settings.get('lm') as LM | null);
    if (!lm) throw new NoLMConfiguredError();

    // DSPy raises the temperature for n>1 so the generations differ.
    const temperature = (config.temperature ?? lm.kwargs.temperature) as number | null | undefined;
    const n = Number(config.n ?? lm.kwargs.n ?? lm.kwargs.num_generations ?? 1);
    if ((temperature === null || temperature === undefined || Number(temperature) <= 0.15) && n > 1)
      config.temperature = 0.7;

    const values: Record<string, unknown> = {};
    for (const f of this.signature.inputFields) {
      if (f.name in fields) values[f.name] = fields[f.name];
      else if (f.hasDefault) values[f.name] = f.default;
    }

    const adapter = (settings.get('adapter') as Adapter | null) ?? new ChatAdapter();
    const ctx = settings.callContext();
    const stream = ctx?.stream;
    const streams = stream && (!stream.predictors || stream.predictors.has(this));
    const onChunk = streams
      ? (chunk: LMStreamChunk, adapter: string) => stream.sink({ predictor: this, adapter, chunk })
      : undefined;
    const completions = await adapter.call(lm, config, this.signature, this.demos, values, {
      signal: ctx?.signal,
      onChunk,
    });
    const pred = Prediction.fromCompletions(completions, this.signature);

    const trace = ctx?.trace;
    if (trace && settings.get('maxTraceSize') > 0) {
      if (trace.length >= settings.get('maxTraceSize')) trace.shift();
      trace.push({ predictor: this, inputs: { ...fields }, prediction: pred });
    }
    return pred;
  }

  /** DSPy `Predict.dump_state`. Demos are saved as plain dicts (Example → `toDict()`). */
  override dumpState(): Record<string, unknown> {
    return {
      traces: this.traces,
      train: this.train,
      demos: this.demos.map((d) => (d instanceof Example ? d.toDict() : { ...d })),
      signature: this.signature.dumpState(),
      lm: this.lm ? this.lm.dumpState() : null,
    };
  }

  checkState(state: unknown): void {
    if (!state || typeof state !== 'object' || Array.isArray(state))
      throw new Error('state must be a JSON object');
    const s = state as Record<string, unknown>;
    if (!('signature' in s)) throw new Error('state has no "signature"');
    if ('demos' in s && !Array.isArray(s.demos)) throw new Error('"demos" must be an array');
    if (Array.isArray(s.demos)) {
      s.demos.forEach((d, i) => {
        if (!d || typeof d !== 'object' || Array.isArray(d))
          throw new Error(`demo ${i} must be a JSON object`);
      });
    }
    if (
      s.lm !== null &&
      s.lm !== undefined &&
      (typeof s.lm !== 'object' || typeof (s.lm as any).model !== 'string')
    ) {
      throw new Error('"lm" must be null or an object with a "model" string');
    }
    this.signature.loadState(s.signature as SignatureState);
  }

  /**
   * DSPy `Predict.load_state`. A saved LM is rebuilt around this predictor's current provider (DSPy builds a
   * new LiteLLM client); an LM without a provider falls back to the globally configured one when called.
   */
  override loadState(raw: unknown, source: string | null = null): this {
    try {
      this.checkState(raw);
    } catch (e) {
      throw new StateLoadError(
        `${source ? `${source}: ` : ''}predictor "self": ${(e as Error).message}`,
        source,
        'self',
      );
    }
    const state = raw as Record<string, unknown>;
    const excluded = new Set(['signature', 'extended_signature', 'lm']);
    for (const [k, v] of Object.entries(state)) {
      if (excluded.has(k)) continue;
      if (k === 'demos') this.demos = (v as Record<string, unknown>[]).map((d) => ({ ...d }));
      else if (k === 'traces') this.traces = v as unknown[];
      else if (k === 'train') this.train = v as unknown[];
    }
    this.signature = this.signature.loadState(state.signature as SignatureState);
    const lmState = state.lm as Record<string, unknown> | null | undefined;
    const provider = this.lm?.provider ?? (settings.get('lm') as LM | null)?.provider;
    this.lm = lmState ? LM.fromState(lmState, { provider }) : null;
    return this;
  }
}
