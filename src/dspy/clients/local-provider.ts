/**
 * An in-process LM over `node-llama-cpp` (a GGUF model on the CPU). Framework-free.
 *
 * `node-llama-cpp` is ESM with top-level await, so it is loaded with a real dynamic `import()` (kept as such by
 * `module: nodenext`) on first use only: a service configured for an HTTP endpoint never loads it.
 *
 * Output shape: every request that carries a DSPy adapter's output structure is generated under a JSON-schema
 * grammar, so even a tiny model returns parseable output.
 * - JSONAdapter (`response_format` = StructuredOutputFormat): the format's schema, every string bounded.
 * - JSONAdapter in JSON-object mode: a schema of string fields read from the prompt's field list.
 * - ChatAdapter (`[[ ## field ## ]]` sections): JSON is generated under a grammar built from the output fields and
 *   rendered back, incrementally, into the `[[ ## field ## ]] … [[ ## completed ## ]]` text the adapter parses.
 * Anything else is free text.
 */
import { existsSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, isAbsolute, join, resolve } from 'node:path';
import type * as NLC from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import {
  ChatMessage,
  LMCallOptions,
  LMRequest,
  LMResponse,
  LMStreamChunk,
  StructuredOutputFormat,
  Usage,
} from './types';

export interface LocalProviderOptions {
  /** What follows `local/` in DSPY_MODEL: a file path, or `hf:<owner>/<repo>/<file>`. */
  spec: string;
  /** Where `hf:` models are downloaded to and relative file names are looked up first. */
  modelsDir: string;
  /** Whether a missing `hf:` model may be downloaded. */
  download?: boolean;
  /** Context sequences (concurrent generations sharing the one loaded model); more requests queue. */
  sequences?: number;
  /** Tokens of context per sequence. */
  contextSize?: number;
  /**
   * CPU threads for generation. Default: cores − 1 (at least 1). llama.cpp's threads spin while they wait for
   * each other, so using every core on a busy machine is pathological (measured here: 0.8 tokens/s with 2 threads
   * on 2 oversubscribed cores, ~1,500 tokens/s with 1 thread, tiny model).
   */
  threads?: number;
  /** Upper bound for every string the grammar allows (characters). */
  maxFieldChars?: number;
  log?: (message: string) => void;
}

/** A download that makes no progress for this long is abandoned (offline hosts). */
const DOWNLOAD_STALL_MS = 30_000;

export type LocalModelState = 'idle' | 'downloading' | 'loading' | 'loaded' | 'error';

export interface LocalModelStatus {
  spec: string;
  file: string;
  sizeBytes: number | null;
  state: LocalModelState;
  loadMs: number | null;
  sequences: number;
  busy: number;
  queued: number;
  error: string | null;
}

/** `local/<spec>` → `<spec>`; null for any other model name. */
export function localModelSpec(model: string): string | null {
  return model.startsWith('local/') ? model.slice('local/'.length) : null;
}

/** The file a spec resolves to (for `hf:` URIs: its file name inside `modelsDir`). */
export function localModelFile(spec: string, modelsDir: string): string {
  if (spec.startsWith('hf:')) return resolve(modelsDir, basename(spec));
  if (isAbsolute(spec)) return spec;
  const inDir = resolve(modelsDir, spec);
  return existsSync(inDir) ? inDir : resolve(spec);
}

type JsonSchema = Record<string, unknown>;

/** Bounds every string (maxLength, minLength 1), inlines `$ref`s and drops keywords the grammar does not need. */
export function boundSchema(schema: JsonSchema, maxChars: number, root: JsonSchema = schema): JsonSchema {
  const ref = schema.$ref;
  if (typeof ref === 'string' && ref.startsWith('#/')) {
    let target: unknown = root;
    for (const key of ref.slice(2).split('/')) target = (target as JsonSchema | undefined)?.[key];
    return boundSchema({ ...(target as JsonSchema), ...schema, $ref: undefined }, maxChars, root);
  }
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(schema)) {
    if (v === undefined || k === '$defs' || k === 'title' || k === 'description' || k === 'default') continue;
    if (k === 'properties' && v && typeof v === 'object') {
      out.properties = Object.fromEntries(
        Object.entries(v as Record<string, JsonSchema>).map(([p, s]) => [p, boundSchema(s, maxChars, root)]),
      );
    } else if ((k === 'items' || k === 'additionalProperties') && v && typeof v === 'object') {
      out[k] = boundSchema(v as JsonSchema, maxChars, root);
    } else if ((k === 'anyOf' || k === 'oneOf') && Array.isArray(v)) {
      out.oneOf = v.map((s: JsonSchema) => boundSchema(s, maxChars, root));
    } else out[k] = v;
  }
  if (out.type === 'string' && !out.enum && out.const === undefined) {
    out.maxLength = Math.min(typeof out.maxLength === 'number' ? out.maxLength : maxChars, maxChars);
    out.minLength = Math.min(typeof out.minLength === 'number' ? out.minLength : 1, out.maxLength as number);
    delete out.format;
    delete out.pattern;
  }
  if (out.type === 'array' && out.maxItems === undefined) out.maxItems = 8;
  return out;
}

function stringFieldsSchema(fields: string[], maxChars: number): JsonSchema {
  return {
    type: 'object',
    properties: Object.fromEntries(
      fields.map((f) => [f, { type: 'string', minLength: 1, maxLength: maxChars }]),
    ),
    required: fields,
    additionalProperties: false,
  };
}

/** ChatAdapter's output fields, from its closing instruction (`starting with the field [[ ## a ## ]], then …`). */
export function chatOutputFields(messages: ChatMessage[]): string[] | null {
  const last = messages[messages.length - 1];
  if (!last || last.role !== 'user') return null;
  const i = last.content.lastIndexOf('Respond with the corresponding output fields');
  if (i < 0 || !last.content.includes('[[ ## completed ## ]]', i)) return null;
  const fields = [...last.content.slice(i).matchAll(/\[\[ ## (\w+) ## \]\]/g)]
    .map((m) => m[1])
    .filter((f) => f !== 'completed');
  return fields.length ? fields : null;
}

/** JSONAdapter's output fields in JSON-object mode (`in the following order of fields: `a`, then `b``). */
export function jsonOutputFields(messages: ChatMessage[]): string[] | null {
  const last = messages[messages.length - 1];
  if (!last || last.role !== 'user') return null;
  const i = last.content.lastIndexOf('Respond with a JSON object in the following order of fields:');
  if (i < 0) return null;
  const line = last.content.slice(i).split('\n')[0];
  const fields = [...line.matchAll(/`(\w+)`/g)].map((m) => m[1]);
  return fields.length ? fields : null;
}

/** Streams a grammar-constrained `{"field": "string", …}` object as ChatAdapter text, one delta per input delta. */
export class JsonToChatRenderer {
  private inString = false;
  private isValue = false;
  private expectValue = false;
  private escape = false;
  private unicode: string | null = null;
  private key = '';
  private fields = 0;

  push(text: string): string {
    let out = '';
    const emit = (c: string) => {
      if (this.isValue) out += c;
      else this.key += c;
    };
    for (const ch of text) {
      if (!this.inString) {
        if (ch === ':') this.expectValue = true;
        else if (ch === '"') {
          this.inString = true;
          this.isValue = this.expectValue;
          this.expectValue = false;
          if (this.isValue) out += `${this.fields++ ? '\n\n' : ''}[[ ## ${this.key} ## ]]\n`;
          else this.key = '';
        }
        continue;
      }
      if (this.unicode !== null) {
        this.unicode += ch;
        if (this.unicode.length === 4) {
          emit(String.fromCharCode(parseInt(this.unicode, 16)));
          this.unicode = null;
        }
      } else if (this.escape) {
        this.escape = false;
        if (ch === 'u') this.unicode = '';
        else emit(({ n: '\n', t: '\t', r: '\r', b: '\b', f: '\f' } as Record<string, string>)[ch] ?? ch);
      } else if (ch === '\\') this.escape = true;
      else if (ch === '"') this.inString = false;
      else emit(ch);
    }
    return out;
  }

  end(): string {
    return `${this.fields ? '\n\n' : ''}[[ ## completed ## ]]\n`;
  }
}

/** A push → async-iterator bridge for node-llama-cpp's callbacks. */
class ChunkQueue<T> {
  private items: T[] = [];
  private wake: (() => void) | null = null;
  private done = false;
  private error: Error | null = null;
  push(item: T): void {
    this.items.push(item);
    this.wake?.();
  }
  close(error?: unknown): void {
    this.done = true;
    this.error = error === undefined ? null : error instanceof Error ? error : new Error(String(error));
    this.wake?.();
  }
  async *drain(): AsyncGenerator<T> {
    for (;;) {
      while (this.items.length) yield this.items.shift() as T;
      if (this.done) {
        if (this.error) throw this.error;
        return;
      }
      await new Promise<void>((r) => (this.wake = r));
      this.wake = null;
    }
  }
}

interface Loaded {
  nlc: typeof NLC;
  llama: NLC.Llama;
  model: NLC.LlamaModel;
  context: NLC.LlamaContext;
}

export class LocalProvider {
  readonly file: string;
  private readonly sequencesWanted: number;
  private state: LocalModelState = 'idle';
  private error: string | null = null;
  private loadMs: number | null = null;
  private loading: Promise<Loaded> | null = null;
  private free: NLC.LlamaContextSequence[] = [];
  private busy = 0;
  private waiters: { resolve: (s: NLC.LlamaContextSequence) => void; reject: (e: unknown) => void }[] = [];
  private readonly grammars = new Map<string, Promise<NLC.LlamaGrammar>>();

  constructor(private readonly options: LocalProviderOptions) {
    this.file = localModelFile(options.spec, options.modelsDir);
    this.sequencesWanted = Math.max(1, options.sequences ?? 2);
  }

  /** Whether the model file is on disk (an `hf:` model may still have to be downloaded). */
  fileExists(): boolean {
    return existsSync(this.file);
  }

  status(): LocalModelStatus {
    let sizeBytes: number | null = null;
    try {
      sizeBytes = statSync(this.file).size;
    } catch {
      sizeBytes = null;
    }
    return {
      spec: this.options.spec,
      file: this.file,
      sizeBytes,
      state: this.state,
      loadMs: this.loadMs,
      sequences: this.sequencesWanted,
      busy: this.busy,
      queued: this.waiters.length,
      error: this.error,
    };
  }

  /** Downloads (for `hf:` specs, when allowed and missing) and loads the model once; concurrent callers share it. */
  load(): Promise<Loaded> {
    this.loading ??= this.doLoad().catch((error: unknown) => {
      this.state = 'error';
      this.error = error instanceof Error ? error.message : String(error);
      this.loading = null;
      throw error;
    });
    return this.loading;
  }

  private async doLoad(): Promise<Loaded> {
    const started = Date.now();
    const log = this.options.log ?? (() => undefined);
    const nlc = await import('node-llama-cpp');
    if (!this.fileExists()) {
      if (!this.options.spec.startsWith('hf:')) {
        throw new Error(
          `Local model file ${this.file} does not exist: place a GGUF file there (or set DSPY_MODEL=local/<path.gguf>), or configure an endpoint with OPENAI_API_KEY / OPENAI_BASE_URL.`,
        );
      }
      if (!this.options.download) {
        throw new Error(
          `Local model ${this.options.spec} is not in ${this.options.modelsDir} and downloads are off (LOCAL_MODEL_DOWNLOAD=false): place ${basename(this.file)} there, or configure an endpoint with OPENAI_API_KEY / OPENAI_BASE_URL.`,
        );
      }
      this.state = 'downloading';
      log(`downloading ${this.options.spec} into ${this.options.modelsDir}`);
      let lastLogged = 0;
      // Offline, the downloader retries for a long time: no progress for DOWNLOAD_STALL_MS ends the attempt.
      let downloader: NLC.ModelDownloader | null = null;
      let stallTimer: NodeJS.Timeout | undefined;
      let rejectStall: (e: Error) => void = () => undefined;
      const stalled = new Promise<never>((_, reject) => (rejectStall = reject));
      stalled.catch(() => undefined);
      const arm = () => {
        clearTimeout(stallTimer);
        stallTimer = setTimeout(
          () => rejectStall(new Error(`no download progress for ${DOWNLOAD_STALL_MS / 1000} s`)),
          DOWNLOAD_STALL_MS,
        );
        stallTimer.unref();
      };
      arm();
      const attempt = async () => {
        downloader = await nlc.createModelDownloader({
          modelUri: this.options.spec,
          dirPath: this.options.modelsDir,
          fileName: basename(this.file),
          showCliProgress: false,
          onProgress: ({ totalSize, downloadedSize }) => {
            arm();
            const pct = totalSize ? Math.floor((downloadedSize / totalSize) * 100) : 0;
            if (pct >= lastLogged + 10) {
              lastLogged = pct;
              log(
                `download ${pct}% (${(downloadedSize / 1e6).toFixed(0)} of ${(totalSize / 1e6).toFixed(0)} MB)`,
              );
            }
          },
        });
        await downloader.download();
      };
      try {
        await Promise.race([attempt(), stalled]).finally(() => clearTimeout(stallTimer));
      } catch (error: unknown) {
        await (downloader as NLC.ModelDownloader | null)?.cancel().catch(() => undefined);
        const why = error instanceof Error ? error.message : String(error);
        throw new Error(
          `Could not download ${this.options.spec} (${why}). Offline? Place ${basename(this.file)} in ${this.options.modelsDir}, or set DSPY_MODEL=local/<path.gguf>, or configure an endpoint with OPENAI_API_KEY / OPENAI_BASE_URL.`,
        );
      }
    }
    this.state = 'loading';
    const llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: nlc.LlamaLogLevel.error });
    const model = await llama.loadModel({ modelPath: this.file });
    const context = await model.createContext({
      contextSize: Math.min(this.options.contextSize ?? 4096, model.trainContextSize),
      sequences: this.sequencesWanted,
      threads: this.options.threads ?? Math.max(1, availableParallelism() - 1),
    });
    for (let i = 0; i < this.sequencesWanted; i++) this.free.push(context.getSequence());
    this.loadMs = Date.now() - started;
    this.state = 'loaded';
    this.error = null;
    log(`loaded ${this.file} in ${this.loadMs} ms (${this.sequencesWanted} sequences)`);
    return { nlc, llama, model, context };
  }

  /** A free context sequence, or a place in the queue for one; leaving the queue on abort. */
  private acquire(signal?: AbortSignal): Promise<NLC.LlamaContextSequence> {
    const seq = this.free.pop();
    if (seq) {
      this.busy++;
      return Promise.resolve(seq);
    }
    return new Promise((resolvePromise, reject) => {
      const waiter = {
        resolve: (s: NLC.LlamaContextSequence) => {
          signal?.removeEventListener('abort', onAbort);
          this.busy++;
          resolvePromise(s);
        },
        reject,
      };
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        const reason: unknown = signal?.reason;
        reject(reason instanceof Error ? reason : new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private async release(seq: NLC.LlamaContextSequence): Promise<void> {
    this.busy--;
    try {
      await seq.clearHistory();
    } catch {
      // A disposed sequence cannot be reused; the queue still moves on with the others.
    }
    const next = this.waiters.shift();
    if (next) next.resolve(seq);
    else this.free.push(seq);
  }

  private grammarFor(loaded: Loaded, schema: JsonSchema): Promise<NLC.LlamaGrammar> {
    const key = JSON.stringify(schema);
    const cached = this.grammars.get(key);
    if (cached) return cached;
    const grammar = loaded.llama.createGrammarForJsonSchema(schema as never) as Promise<NLC.LlamaGrammar>;
    this.grammars.set(key, grammar);
    grammar.catch(() => this.grammars.delete(key));
    return grammar;
  }

  /** The output plan for a request: which grammar (if any) and whether to render JSON back as ChatAdapter text. */
  private plan(request: LMRequest): { schema: JsonSchema | null; chat: boolean } {
    const maxChars = this.options.maxFieldChars ?? 600;
    const format = request.kwargs.response_format;
    if (format instanceof StructuredOutputFormat)
      return { schema: boundSchema(format.schema, maxChars), chat: false };
    const chatFields = chatOutputFields(request.messages);
    if (chatFields) return { schema: stringFieldsSchema(chatFields, maxChars), chat: true };
    const jsonFields = jsonOutputFields(request.messages);
    if (jsonFields) return { schema: stringFieldsSchema(jsonFields, maxChars), chat: false };
    if ((format as { type?: string } | undefined)?.type === 'json_object') {
      return {
        schema: { type: 'object', additionalProperties: { type: 'string', maxLength: maxChars } },
        chat: false,
      };
    }
    return { schema: null, chat: false };
  }

  async *stream(request: LMRequest, options: LMCallOptions = {}): AsyncGenerator<LMStreamChunk> {
    const loaded = await this.load();
    const { schema, chat } = this.plan(request);
    const grammar = schema ? await this.grammarFor(loaded, schema) : undefined;
    const seq = await this.acquire(options.signal);
    const queue = new ChunkQueue<string>();
    const renderer = chat ? new JsonToChatRenderer() : null;
    const before = seq.tokenMeter.getState();
    const history: NLC.ChatHistoryItem[] = [];
    const messages = [...request.messages];
    const last = messages[messages.length - 1]?.role === 'user' ? messages.pop() : undefined;
    for (const m of messages) {
      if (m.role === 'system') history.push({ type: 'system', text: m.content });
      else if (m.role === 'user') history.push({ type: 'user', text: m.content });
      else history.push({ type: 'model', response: [m.content] });
    }
    const session = new loaded.nlc.LlamaChatSession({ contextSequence: seq, autoDisposeSequence: false });
    session.setChatHistory(history);
    const temperature =
      typeof request.kwargs.temperature === 'number' ? request.kwargs.temperature : undefined;
    const maxTokens = typeof request.kwargs.max_tokens === 'number' ? request.kwargs.max_tokens : undefined;
    let stopReason: string | null = null;
    const run = session
      .promptWithMeta(last?.content ?? '', {
        grammar,
        maxTokens,
        temperature,
        signal: options.signal,
        onTextChunk: (text) => queue.push(text),
      })
      .then((meta) => {
        stopReason = meta.stopReason;
        queue.close();
      })
      .catch((error: unknown) => queue.close(error));
    try {
      for await (const text of queue.drain()) {
        const out = renderer ? renderer.push(text) : text;
        if (out) yield { text: out };
      }
      await run;
      const after = seq.tokenMeter.getState();
      const prompt = after.usedInputTokens - before.usedInputTokens;
      const completion = after.usedOutputTokens - before.usedOutputTokens;
      const usage: Usage = {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
      };
      if (renderer) yield { text: renderer.end() };
      yield {
        text: '',
        finishReason: stopReason === 'maxTokens' ? 'length' : 'stop',
        usage,
        responseModel: `local/${basename(this.file)}`,
      };
    } finally {
      await run;
      session.dispose({ disposeSequence: false });
      await this.release(seq);
    }
  }

  async complete(
    request: LMRequest,
    options: LMCallOptions = {},
  ): Promise<Omit<LMResponse, 'cacheHit' | 'savedUsage'>> {
    const n = typeof request.kwargs.n === 'number' ? Math.max(1, request.kwargs.n) : 1;
    const outputs: string[] = [];
    const finishReasons: (string | null)[] = [];
    const totals = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
    let responseModel: string | null = null;
    for (let i = 0; i < n; i++) {
      let text = '';
      for await (const chunk of this.stream(request, options)) {
        text += chunk.text;
        if (chunk.usage) {
          for (const k of Object.keys(totals) as (keyof typeof totals)[])
            totals[k] += Number(chunk.usage[k] ?? 0);
          finishReasons.push(chunk.finishReason ?? null);
          responseModel = chunk.responseModel ?? null;
        }
      }
      outputs.push(text);
    }
    return { outputs, usage: totals, responseModel, finishReasons };
  }

  async dispose(): Promise<void> {
    const loaded = await this.loading?.catch(() => null);
    if (loaded) await loaded.model.dispose();
  }
}

/** The default model when no endpoint is configured: small, instruction-tuned, 4-bit. */
export const DEFAULT_LOCAL_MODEL =
  'local/hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf';

export function defaultModelFile(modelsDir: string): string {
  return join(resolve(modelsDir), basename(DEFAULT_LOCAL_MODEL));
}
