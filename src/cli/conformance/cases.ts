import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { APIError } from 'openai';
import * as dspy from '../../dspy';
import {
  Adapter,
  cacheKey,
  cacheKeyJson,
  ChainOfThought,
  ChatAdapter,
  DSPyError,
  isRetryableLMError,
  JSONAdapter,
  LM,
  Predict,
  Prediction,
  serializeState,
  settings,
  Signature,
  StructuredOutputFormat,
  structuredOutputsFormat,
} from '../../dspy';
import { fieldTypeFromFixture } from '../../dspy/adapters/fixture-types';
import { toDSPyError } from '../../dspy/clients/provider-errors';
import { checkStreamingFixture } from '../../dspy/streaming/fixture-check';
import { QAProgram } from '../../program/qa.program';
import { firstDifference, plain } from './diff';
import { parsePythonJson } from './python-json';
import { RecordingCache, ScriptedProvider, TwoLayerCache } from './stub-provider';

export type Fixture = Record<string, any>;
export interface CaseContext {
  dir: string;
  file: string;
}
/** A list of differences; empty when the case passes. */
export type CaseResult = string[];

const LITELLM_ONLY_KEYS = ['cache', 'num_retries', 'retry_strategy', 'headers'];

interface FixtureField {
  name: string;
  role: 'input' | 'output';
  type: string;
  desc: string;
  prefix: string;
  constraints?: string;
  type_json_schema?: object;
}

export function signatureFromFixture(sig: {
  class_name: string;
  instructions: string;
  fields: FixtureField[];
}): Signature {
  const spec = (f: FixtureField) => ({
    type: fieldTypeFromFixture(f),
    desc: f.desc,
    prefix: f.prefix,
    ...(f.constraints ? { constraints: f.constraints } : {}),
  });
  return Signature.define({
    name: sig.class_name,
    instructions: sig.instructions,
    inputs: Object.fromEntries(sig.fields.filter((f) => f.role === 'input').map((f) => [f.name, spec(f)])),
    outputs: Object.fromEntries(sig.fields.filter((f) => f.role === 'output').map((f) => [f.name, spec(f)])),
  });
}

/** Our signature in the fixtures' own description format, to compare field by field. */
function describeSignature(sig: Signature) {
  return {
    class_name: sig.name,
    instructions: sig.instructions,
    fields: sig.fields.map((f) => ({
      name: f.name,
      role: f.role,
      type: dspy.annotationName(f.type),
      desc: f.desc,
      prefix: f.prefix,
    })),
  };
}

function strip(fields: FixtureField[]) {
  return fields.map(({ name, role, type, desc, prefix }) => ({ name, role, type, desc, prefix }));
}

function check(out: CaseResult, label: string, expected: unknown, actual: unknown): void {
  const d = firstDifference(plain(expected), plain(actual), label);
  if (d) out.push(d);
}

/** A request as DSPy hands it to litellm, minus litellm's own keys, in comparable form. */
function requestView(request: dspy.LMRequest): Record<string, unknown> {
  const kwargs: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(request.kwargs)) {
    kwargs[k] =
      v instanceof StructuredOutputFormat
        ? { __pydantic_model_class__: v.name, model_json_schema: v.schema }
        : v;
  }
  return { model: request.model, messages: request.messages, ...kwargs };
}

function litellmView(call: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(call).filter(([k]) => !LITELLM_ONLY_KEYS.includes(k)));
}

function errorView(e: unknown): Record<string, unknown> {
  if (e instanceof DSPyError) {
    return {
      type: e.name,
      mro: DSPyError.mro(e),
      message: e.message,
      code: e.code,
      is_retryable_lm_error: isRetryableLMError(e),
      ...(e.model !== null ? { model: e.model } : {}),
      ...(e.provider !== null ? { provider: e.provider } : {}),
      ...(e.status !== null ? { status: e.status } : {}),
      ...(e instanceof dspy.AdapterParseError ? { adapter_name: e.adapterName } : {}),
    };
  }
  return { type: (e as Error).name, message: (e as Error).message };
}

/** The fields of an expected error we reproduce (fixture-only keys like `parsed_result` are left out). */
function expectedErrorView(expected: Record<string, unknown>, actual: Record<string, unknown>) {
  return Object.fromEntries(
    Object.keys(actual)
      .filter((k) => k in expected)
      .map((k) => [k, expected[k]]),
  );
}

function adapterFor(name: string | undefined): Adapter {
  return name === 'JSONAdapter' ? new JSONAdapter() : new ChatAdapter();
}

async function runCaptured<T>(fn: () => Promise<T>): Promise<{ value?: T; error?: unknown }> {
  try {
    return { value: await fn() };
  } catch (error) {
    return { error };
  }
}

// ---------------------------------------------------------------------------------------------- formats

async function formatCase(fx: Fixture): Promise<CaseResult> {
  const out: CaseResult = [];
  const sig = signatureFromFixture(fx.signature);
  check(out, 'signature', strip(fx.signature.fields), describeSignature(sig).fields);

  if (!fx.messages) {
    // Structured-outputs schema only (json_adapter_format/structured_output_schema_*).
    const r = await runCaptured(async () => structuredOutputsFormat(sig));
    if (fx.error)
      check(out, 'error.message', fx.error.message, r.error ? (r.error as Error).message : 'no error');
    else check(out, 'schema', fx.dspy_response_format_json_schema, r.value?.schema ?? String(r.error));
    return out;
  }

  let predictor: Predict;
  if (fx.module === 'ChainOfThought') {
    const original = signatureFromFixture({
      ...fx.signature,
      fields: fx.signature.fields.filter((f: FixtureField) => f.name !== 'reasoning'),
    });
    const cot = new ChainOfThought(original);
    check(
      out,
      'chain_of_thought.signature',
      strip(fx.signature.fields),
      describeSignature(cot.predict.signature).fields,
    );
    predictor = cot.predict;
  } else {
    predictor = new Predict(sig);
  }
  const adapter = adapterFor(fx.adapter);
  predictor.demos = fx.demos;
  check(out, 'messages', fx.messages, adapter.format(predictor.signature, fx.demos, fx.inputs));

  const provider = new ScriptedProvider([fx.scripted_completion]);
  const lm = new LM('openai/gpt-4o-mini', { provider, cacheStore: null, fnIdentifier: 'sync' });
  const r = await runCaptured(() =>
    settings.context({ lm, adapter, trackUsage: false }, () => predictor.call(fx.inputs)),
  );
  if (fx.prediction) check(out, 'prediction', fx.prediction, r.value?.toDict() ?? String(r.error));
  const expectedKwargs = fx.lm_request_kwargs as Record<string, unknown>;
  check(
    out,
    'lm_request',
    litellmView(expectedKwargs),
    provider.requests[0] ? requestView(provider.requests[0]) : null,
  );
  return out;
}

// ---------------------------------------------------------------------------------------------- parsing

async function parseCase(fx: Fixture): Promise<CaseResult> {
  const out: CaseResult = [];
  const sig = signatureFromFixture(fx.signature);
  const r = await runCaptured(async () => adapterFor(fx.adapter).parse(sig, fx.completion));
  if (fx.ok) {
    check(out, 'parsed', fx.parsed, r.value ?? `error: ${String(r.error)}`);
    if (r.value && fx.parsed_python_types)
      check(out, 'parsed_types', fx.parsed_python_types, pythonTypes(r.value, sig));
  } else {
    const actual = r.error ? errorView(r.error) : { type: 'no error', parsed: r.value };
    check(out, 'error', expectedErrorView(fx.error, actual), {
      type: actual.type,
      message: actual.message,
      ...pick(actual, fx.error),
    });
  }
  return out;
}

function pick(actual: Record<string, unknown>, expected: Record<string, unknown>) {
  return Object.fromEntries(
    Object.entries(actual).filter(([k]) => k in expected && k !== 'type' && k !== 'message'),
  );
}

/** Python type names of parsed values as the fixtures record them; a float field's value is a float. */
function pythonTypes(parsed: Record<string, unknown>, sig: Signature): Record<string, string> {
  const name = (v: unknown, kind?: string): string => {
    if (v === null) return 'NoneType';
    if (typeof v === 'string') return 'str';
    if (typeof v === 'boolean') return 'bool';
    if (typeof v === 'number') return kind === 'float' || !Number.isInteger(v) ? 'float' : 'int';
    if (Array.isArray(v)) return 'list';
    return 'dict';
  };
  return Object.fromEntries(
    Object.entries(parsed).map(([k, v]) => {
      const type = sig.field(k)?.type;
      if (type?.kind === 'enum') return [k, `enum ${type.name}`];
      if (type?.kind === 'object') return [k, `pydantic ${type.name}`];
      return [k, name(v, type?.kind)];
    }),
  );
}

// ---------------------------------------------------------------------------------------------- state

function savedStateCase(dir: string, file: string): CaseResult {
  const out: CaseResult = [];
  const index = JSON.parse(readFileSync(join(dir, 'saved_state/_index.json'), 'utf8')) as {
    cases: Fixture[];
  };
  const meta = index.cases.find((c) => c.file === file);
  const bytes = readFileSync(join(dir, file));
  const program = new QAProgram();
  const r = (() => {
    try {
      program.loadState(parsePythonJson(bytes.toString('utf8')), file);
      return null;
    } catch (e) {
      return e as Error;
    }
  })();
  if (r) return [`load: ${r.message}`];
  const written = serializeState({
    ...program.dumpState(),
    metadata: { dependency_versions: dspy.DEPENDENCY_VERSIONS },
  });
  check(out, 'file', bytes.toString('utf8'), written);
  if (meta) {
    check(out, 'sha256', meta.sha256_of_file_bytes, createHash('sha256').update(written).digest('hex'));
    check(
      out,
      'named_predictors',
      meta.named_predictors,
      program.namedPredictors().map(([n]) => n),
    );
  }
  return out;
}

function moduleCase(fx: Fixture): CaseResult {
  const out: CaseResult = [];
  const original = signatureFromFixture(fx.original);
  check(out, 'original', { ...fx.original, fields: strip(fx.original.fields) }, describeSignature(original));
  const cot = new ChainOfThought(original);
  check(
    out,
    'extended',
    { ...fx.extended, fields: strip(fx.extended.fields) },
    describeSignature(cot.predict.signature),
  );
  check(out, 'extended_signature_string', fx.extended_signature_string, cot.predict.signature.toString());
  check(
    out,
    'qaprogram_named_predictors',
    fx.qaprogram_named_predictors,
    new QAProgram().namedPredictors().map(([n]) => n),
  );
  check(
    out,
    'chain_of_thought_named_predictors',
    fx.chain_of_thought_named_predictors,
    cot.namedPredictors().map(([n]) => n),
  );
  const predict = new Predict(original);
  check(
    out,
    'predict_named_predictors',
    fx.predict_named_predictors,
    predict.namedPredictors().map(([n]) => n),
  );
  check(out, 'predict_dump_state', fx.predict_dump_state, predict.dumpState());
  return out;
}

// ---------------------------------------------------------------------------------------------- LM

/** The question DSPy was asked, recovered from its recorded prompt. */
function questionOf(call: Fixture): string {
  const user = call.messages[call.messages.length - 1].content as string;
  return /\[\[ ## question ## \]\]\n([\s\S]*?)\n\nRespond with/.exec(user)![1];
}

function lmFromCall(
  call: Record<string, unknown>,
  provider: dspy.LMProvider,
  cache: dspy.LMCache | null,
): LM {
  const {
    model,
    messages: _m,
    cache: _c,
    retry_strategy: _r,
    headers: _h,
    num_retries,
    temperature,
    max_tokens,
    max_completion_tokens,
    response_format: _rf,
    ...rest
  } = call;
  return new LM(model as string, {
    provider,
    cacheStore: cache,
    fnIdentifier: 'sync',
    numRetries: num_retries as number,
    temperature: temperature == null ? null : Number(temperature),
    maxTokens: ((max_tokens ?? max_completion_tokens) as number | null) ?? null,
    kwargs: rest,
  });
}

async function runQA(
  lm: LM,
  question: string,
  trackUsage: boolean,
  adapter: Adapter | null = null,
  config?: Record<string, unknown>,
) {
  const program = new QAProgram();
  return runCaptured(() =>
    settings.context({ lm, adapter, trackUsage }, () =>
      program.call({ question, ...(config ? { config } : {}) }),
    ),
  );
}

function checkPrediction(out: CaseResult, fx: Fixture, pred: Prediction | undefined, error: unknown): void {
  if (fx.prediction) check(out, 'prediction', fx.prediction, pred?.toDict() ?? `error: ${String(error)}`);
  if (fx.prediction_keys_in_order)
    check(out, 'prediction_keys_in_order', fx.prediction_keys_in_order, pred?.keys() ?? []);
  if ('get_lm_usage' in fx) check(out, 'get_lm_usage', fx.get_lm_usage, pred ? pred.getLmUsage() : undefined);
}

function checkCalls(out: CaseResult, fx: Fixture, provider: ScriptedProvider, cache: RecordingCache): void {
  const expected = (fx.litellm_calls as Fixture[]).map((c) => litellmView(c));
  check(out, 'litellm_calls', expected, provider.requests.map(requestView));
  check(
    out,
    'cache_keys',
    (fx.cache_key_events as Fixture[]).map((e) => e.key),
    cache.keys,
  );
}

async function lmRequestCase(fx: Fixture): Promise<CaseResult> {
  const out: CaseResult = [];
  const call = fx.litellm_calls[0] as Record<string, unknown>;
  const provider = new ScriptedProvider(
    [fx.lm_history_last?.outputs?.[0] ?? completionFor(fx.prediction)],
    fx.stub_usage ?? null,
  );
  const cache = new RecordingCache();
  const lm = lmFromCall(call, provider, cache);
  const r = await runQA(lm, questionOf(fx.litellm_calls[0]), fx.get_lm_usage !== null);
  checkPrediction(out, fx, r.value, r.error);
  checkCalls(out, fx, provider, cache);
  for (const e of fx.cache_key_events as Fixture[]) {
    const request = e.request as Record<string, unknown>;
    check(out, 'canonical_json', e.canonical_json, cacheKeyJson(request));
  }
  if (fx.lm_history_last) {
    const last = lm.history[lm.history.length - 1];
    check(out, 'history.usage', fx.lm_history_last.usage, last?.usage);
    check(out, 'history.outputs', fx.lm_history_last.outputs, last?.outputs);
    check(out, 'history.response_model', fx.lm_history_last.response_model, last?.responseModel);
  }
  return out;
}

/** A ChatAdapter completion carrying a prediction's fields (for fixtures that record only the prediction). */
function completionFor(prediction: Record<string, unknown>): string {
  return `${Object.entries(prediction)
    .map(([k, v]) => `[[ ## ${k} ## ]]\n${String(v)}`)
    .join('\n\n')}\n\n[[ ## completed ## ]]`;
}

async function syncVsAsyncCase(fx: Fixture): Promise<CaseResult> {
  const out: CaseResult = [];
  const provider = new ScriptedProvider([completionFor(fx.sync_prediction)]);
  const cache = new RecordingCache();
  const sync = new LM('openai/gpt-4o-mini', { provider, cacheStore: cache, fnIdentifier: 'sync' });
  const asyncLm = new LM('openai/gpt-4o-mini', { provider, cacheStore: cache, fnIdentifier: 'async' });
  const question = 'What causes the seasons on Earth?';
  const a = await runQA(sync, question, false);
  const b = await runQA(asyncLm, question, false);
  check(out, 'sync_prediction', fx.sync_prediction, a.value?.toDict() ?? String(a.error));
  check(out, 'async_prediction', fx.async_prediction, b.value?.toDict() ?? String(b.error));
  check(out, 'litellm_call_count', fx.litellm_call_count, provider.requests.length);
  check(
    out,
    'cache_keys',
    (fx.cache_key_events as Fixture[]).map((e) => e.key),
    cache.keys,
  );
  return out;
}

function cacheKeysCase(fx: Fixture): CaseResult {
  const out: CaseResult = [];
  const cases = fx.cases as Fixture[];
  cases.forEach((c, i) => {
    let request = c.request as Record<string, unknown>;
    const rf = request.response_format as Record<string, any> | undefined;
    if (rf && rf.__pydantic_model_class__) {
      request = {
        ...request,
        response_format: new StructuredOutputFormat(rf.__pydantic_model_class__, rf.model_json_schema),
      };
    }
    check(out, `cases[${i}].canonical_json`, c.canonical_json, cacheKeyJson(request));
    check(out, `cases[${i}].key`, c.key, cacheKey(request));
  });
  return out;
}

async function cacheLayersCase(fx: Fixture): Promise<CaseResult> {
  const out: CaseResult = [];
  const layers = new TwoLayerCache();
  const provider = new ScriptedProvider(
    [
      completionFor({
        reasoning: 'Tilt.',
        answer: "The seasons are caused by the tilt of Earth's axis.",
        key_concepts: 'tilt',
        question_type: 'analytical',
      }),
    ],
    fx.stub_usage,
  );
  const lm = new LM('openai/gpt-4o-mini', {
    provider,
    cacheStore: layers,
    temperature: 0.7,
    fnIdentifier: 'sync',
  });
  const configs: (Record<string, unknown> | undefined)[] = [
    undefined,
    undefined,
    undefined,
    { rollout_id: 1 },
    { rollout_id: 1 },
    { cache: false },
  ];
  for (const [i, step] of (fx.steps as Fixture[]).entries()) {
    if (i === 2) layers.memory.clear();
    const before = provider.requests.length;
    const r = await runQA(lm, 'What causes the seasons on Earth?', true, null, configs[i]);
    const last = lm.history[lm.history.length - 1];
    const actual = {
      litellm_called: provider.requests.length > before,
      total_litellm_calls_so_far: provider.requests.length,
      memory_entries: layers.memory.size,
      prediction_answer_prefix: String(r.value?.answer ?? r.error).slice(0, 40),
      get_lm_usage: r.value?.getLmUsage(),
      history_usage: last?.usage,
      history_response_cache_hit: last?.cacheHit,
    };
    check(out, `steps[${i}]`, { ...step, step: undefined }, { ...actual, step: undefined });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- errors

const LITELLM_STATUS: Record<string, number> = {
  AuthenticationError: 401,
  RateLimitError: 429,
  BadRequestError: 400,
  InternalServerError: 500,
  NotFoundError: 404,
  ServiceUnavailableError: 503,
};

function errorClassesCase(fx: Fixture): CaseResult {
  const out: CaseResult = [];
  for (const [name, expected] of Object.entries(fx.classes as Record<string, Fixture>)) {
    const cls = (dspy as unknown as Record<string, typeof DSPyError>)[name];
    if (!cls) {
      out.push(`classes.${name}: not exported by the runtime`);
      continue;
    }
    const instance = new cls('x');
    check(out, `classes.${name}`, expected, {
      is_retryable_lm_error: isRetryableLMError(instance),
      code: instance.code,
      mro: DSPyError.mro(cls),
    });
  }
  for (const gone of ['DSPyAssertionError', 'Assert', 'Suggest']) {
    check(out, `has_${gone}`, fx[`has_${gone}`], gone in dspy);
  }
  return out;
}

async function providerErrorCase(fx: Fixture): Promise<CaseResult> {
  const out: CaseResult = [];
  const raised = fx.raised_by_litellm as { type: string; message: string };
  const status = LITELLM_STATUS[raised.type];
  const model = 'openai/gpt-4o-mini';
  const fail = () => {
    const sdkError = status
      ? APIError.generate(status, { error: { message: raised.message } }, raised.message, new Headers())
      : Object.assign(new Error(raised.message), { name: raised.type });
    throw toDSPyError(sdkError, model);
  };
  const provider = new ScriptedProvider([fail]);
  const cache = new RecordingCache();
  const lm = new LM(model, { provider, cacheStore: cache, fnIdentifier: 'sync' });
  const r = await runQA(lm, 'What causes the seasons on Earth?', false);
  const actual = r.error ? errorView(r.error) : { type: 'no error' };
  check(out, 'error', fx.error, actual);
  checkCalls(out, fx, provider, cache);
  return out;
}

async function fallbackCase(fx: Fixture, file: string): Promise<CaseResult> {
  const out: CaseResult = [];
  // The fixtures give only the summed usage of a fallback run; each scripted call reports an equal share.
  const usage = fx.get_lm_usage?.['openai/gpt-4o-mini'];
  const n = (fx.scripted as string[]).length;
  const perCall = usage
    ? {
        prompt_tokens: usage.prompt_tokens / n,
        completion_tokens: usage.completion_tokens / n,
        total_tokens: usage.total_tokens / n,
      }
    : null;
  const provider = new ScriptedProvider(fx.scripted, perCall);
  const cache = new RecordingCache();
  const lm = new LM('openai/gpt-4o-mini', { provider, cacheStore: cache, fnIdentifier: 'sync' });
  const adapter = file.includes('no_fallback')
    ? new ChatAdapter({ useJsonAdapterFallback: false })
    : file.includes('json_adapter_parse_failure')
      ? new JSONAdapter()
      : null;
  const r = await runQA(lm, 'What causes the seasons on Earth?', 'get_lm_usage' in fx, adapter);
  if (fx.error) {
    const actual = r.error ? errorView(r.error) : { type: 'no error' };
    check(out, 'error', expectedErrorView(fx.error, actual), actual);
  } else {
    checkPrediction(out, fx, r.value, r.error);
  }
  checkCalls(out, fx, provider, cache);
  return out;
}

// ---------------------------------------------------------------------------------------------- dispatch

export async function runCase(category: string, ctx: CaseContext): Promise<CaseResult | 'unhandled'> {
  const path = join(ctx.dir, ctx.file);
  // Floats and big integers keep their Python identity: cache keys and saved files depend on it.
  const fx = parsePythonJson(readFileSync(path, 'utf8')) as Fixture;
  switch (category) {
    case 'chat_adapter_format':
    case 'json_adapter_format':
      return formatCase(fx);
    case 'chat_adapter_parse':
    case 'json_adapter_parse':
      return parseCase(fx);
    case 'saved_state':
      return savedStateCase(ctx.dir, ctx.file);
    case 'module':
      return moduleCase(fx);
    case 'lm':
      if (ctx.file.endsWith('cache_keys.json')) return cacheKeysCase(fx);
      if (ctx.file.endsWith('cache_layers.json')) return cacheLayersCase(fx);
      if (ctx.file.endsWith('request_sync_vs_async_cache_key.json')) return syncVsAsyncCase(fx);
      return lmRequestCase(fx);
    case 'errors':
      if (ctx.file.endsWith('error_classes.json')) return errorClassesCase(fx);
      if (fx.raised_by_litellm) return providerErrorCase(fx);
      return fallbackCase(fx, ctx.file);
    case 'streaming': {
      const r = checkStreamingFixture(fx);
      return r.ok ? [] : [r.diff ?? 'mismatch'];
    }
    default:
      return 'unhandled';
  }
}
