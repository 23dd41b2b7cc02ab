/**
 * The provider call DSPy makes through `litellm.completion` (dspy-semantics §5.1), done with the official
 * `openai` SDK against any OpenAI-compatible endpoint.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import OpenAI, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIUserAbortError,
  OpenAIError,
} from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';

import { abortError, isErrorLike, stripOpenAIPrefix, toDSPyError } from './provider-errors';
import {
  StructuredOutputFormat,
  type LMCallOptions,
  type LMProvider,
  type LMRequest,
  type LMResponse,
  type LMStreamChunk,
  type Usage,
} from './types';
import type { LMError } from '../utils/exceptions';

export interface OpenAIProviderOptions {
  /** Falls back to `OPENAI_API_KEY` (the SDK's default); a missing key surfaces as LMNotConfiguredError per call. */
  apiKey?: string;
  baseURL?: string;
  /** Per attempt, the whole exchange: a completion until its last byte, a stream until its headers. */
  timeoutMs: number;
  /** TCP/TLS connect of a new pooled connection (undici's connect timeout; its timer is coarse, about 1 s). */
  connectTimeoutMs?: number;
  /** Streams, per attempt: from sending the request to the first content chunk (default: `timeoutMs`). */
  firstTokenTimeoutMs?: number;
  /** Streams: the longest silence between chunks once content flows (default: `timeoutMs`). */
  streamIdleTimeoutMs?: number;
  maxRetries: number;
  /** Replaces the transport (no connect timeout is applied to it). */
  fetch?: typeof fetch;
  defaultHeaders?: Record<string, string>;
}

type RequestOptions = OpenAI.RequestOptions;
type ChatCompletion = OpenAI.Chat.ChatCompletion;
type ChatCompletionChunk = OpenAI.Chat.ChatCompletionChunk;

/** DSPy sends this on every call (`_add_dspy_identifier_to_headers`). */
const DSPY_USER_AGENT = 'DSPy/3.3.1';

/** Keys DSPy uses for itself (cache key, cache control) that must never reach the provider. */
const DSPY_ONLY_KWARGS = new Set(['rollout_id', 'cache']);

/**
 * Keys litellm consumes as client/transport settings instead of sending them in the body. Sending them would
 * get a 400 ("Unrecognized request argument") from OpenAI, or leak a key into the request body.
 */
const TRANSPORT_KWARGS = new Set([
  'api_key',
  'api_base',
  'base_url',
  'headers',
  'extra_headers',
  'timeout',
  'num_retries',
  'retry_strategy',
  'stream',
]);

/**
 * openai-python's `_ensure_strict_json_schema` (what litellm's `type_to_response_format_param` applies to a
 * pydantic response_format). Mutates and returns `schema`.
 */
export function toStrictJsonSchema(
  schema: Record<string, unknown>,
  root: Record<string, unknown> = schema,
): Record<string, unknown> {
  const isDict = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);

  for (const defsKey of ['$defs', 'definitions']) {
    const defs = schema[defsKey];
    if (isDict(defs)) for (const def of Object.values(defs)) if (isDict(def)) toStrictJsonSchema(def, root);
  }
  if (schema.type === 'object' && !('additionalProperties' in schema)) schema.additionalProperties = false;

  const properties = schema.properties;
  if (isDict(properties)) {
    schema.required = Object.keys(properties);
    schema.properties = Object.fromEntries(
      Object.entries(properties).map(([key, prop]) => [
        key,
        isDict(prop) ? toStrictJsonSchema(prop, root) : prop,
      ]),
    );
  }
  if (isDict(schema.items)) schema.items = toStrictJsonSchema(schema.items, root);
  if (Array.isArray(schema.anyOf)) {
    schema.anyOf = schema.anyOf.map((v: unknown) => (isDict(v) ? toStrictJsonSchema(v, root) : v));
  }
  if (Array.isArray(schema.allOf)) {
    if (schema.allOf.length === 1 && isDict(schema.allOf[0])) {
      Object.assign(schema, toStrictJsonSchema(schema.allOf[0], root));
      delete schema.allOf;
    } else {
      schema.allOf = schema.allOf.map((v: unknown) => (isDict(v) ? toStrictJsonSchema(v, root) : v));
    }
  }
  // A None default carries no information the nullable type does not already give.
  if ('default' in schema && schema.default === null) delete schema.default;

  // OpenAI rejects `$ref` with sibling keywords, so such refs are inlined (siblings win).
  const ref = schema.$ref;
  if (typeof ref === 'string' && Object.keys(schema).length > 1) {
    if (!ref.startsWith('#/')) throw new Error(`Unexpected $ref format '${ref}'; Does not start with #/`);
    let resolved: unknown = root;
    for (const key of ref.slice(2).split('/')) {
      resolved = isDict(resolved) ? resolved[key] : undefined;
      if (!isDict(resolved)) throw new Error(`Expected \`$ref: ${ref}\` to resolve to a dictionary`);
    }
    const own = { ...schema };
    Object.assign(schema, resolved, own);
    delete schema.$ref;
    return toStrictJsonSchema(schema, root);
  }
  return schema;
}

/** litellm's wire form for a structured-outputs response format. */
export function toWireResponseFormat(format: StructuredOutputFormat): Record<string, unknown> {
  const schema = structuredClone(format.schema);
  return {
    type: 'json_schema',
    json_schema: { schema: toStrictJsonSchema(schema), name: format.name, strict: true },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function copyUsageValues(source: Record<string, unknown>, target: Usage): Usage {
  for (const [key, value] of Object.entries(source)) {
    if (key in target) continue;
    if (value === null || (typeof value === 'number' && Number.isFinite(value))) target[key] = value;
    else if (isRecord(value)) target[key] = copyUsageValues(value, {});
  }
  return target;
}

function usageDetails(value: unknown, litellmFields: string[]): Usage | null {
  if (!isRecord(value)) return null;
  const details = copyUsageValues(value, {});
  for (const field of litellmFields) if (!(field in details)) details[field] = null;
  return details;
}

/**
 * `dict(response.usage)` as litellm builds it: the three counts first, then the details objects with litellm's
 * own `text_tokens` / `image_tokens` slots (null when the provider does not report them), `null` details when
 * absent, then any other numeric fields the provider sent.
 */
export function normalizeUsage(usage: unknown): Usage {
  const source = isRecord(usage) ? usage : {};
  const count = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const prompt = count(source.prompt_tokens) ?? 0;
  const completion = count(source.completion_tokens) ?? 0;
  const normalized: Usage = {
    completion_tokens: completion,
    prompt_tokens: prompt,
    total_tokens: count(source.total_tokens) ?? prompt + completion,
    completion_tokens_details: usageDetails(source.completion_tokens_details, ['text_tokens']),
    prompt_tokens_details: usageDetails(source.prompt_tokens_details, ['text_tokens', 'image_tokens']),
  };
  return copyUsageValues(source, normalized);
}

/**
 * The SDK classifies fetch failures with `instanceof Error`. Under a vm context (jest) undici's errors come from
 * another realm; a DOMException then loses its name there and a timeout is reported as a connection error.
 */
function toLocalRealmError(error: unknown): unknown {
  if (error instanceof Error || !isErrorLike(error)) return error;
  const local = new Error(error.message, { cause: (error as { cause?: unknown }).cause });
  local.name = error.name;
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) Object.assign(local, { code });
  return local;
}

/** Tells a streaming call when each SDK attempt (its retries run inside one `create`) starts and fails. */
const attemptClock = new AsyncLocalStorage<{ start(): void; stop(): void }>();

const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

/**
 * One attempt of the SDK. A completion's body is read here, inside the SDK's per-attempt timer (which otherwise
 * stops at the headers), so `timeoutMs` bounds the whole exchange, and a body cut short is retried like a failed
 * connection, as httpx reads it for litellm. An event stream passes through to the first-token and idle timers.
 */
async function sendAttempt(
  base: typeof fetch,
  input: string | URL | Request,
  init?: RequestInit,
): Promise<Response> {
  const clock = attemptClock.getStore();
  clock?.start();
  try {
    const response = await base(input, init);
    if (/^text\/event-stream/i.test(response.headers.get('content-type') ?? '')) return response;
    // An error status or a JSON answer: no content is coming on this attempt.
    clock?.stop();
    const text = NULL_BODY_STATUSES.has(response.status) ? '' : await response.text();
    return new ReadResponse(response, text) as unknown as Response;
  } catch (error) {
    clock?.stop();
    throw toLocalRealmError(error);
  }
}

/**
 * A response whose body was read in full inside the attempt: what the SDK reads of a Response (status, headers,
 * text, json), served from the text already read. Wrapping the bytes in a new Response instead would validate
 * every header again and stream the body a second time, on every completion.
 */
class ReadResponse {
  readonly body = null;
  constructor(
    private readonly source: Response,
    private readonly content: string,
  ) {}
  get ok(): boolean {
    return this.source.ok;
  }
  get status(): number {
    return this.source.status;
  }
  get statusText(): string {
    return this.source.statusText;
  }
  get headers(): Headers {
    return this.source.headers;
  }
  get url(): string {
    return this.source.url;
  }
  text(): Promise<string> {
    return Promise.resolve(this.content);
  }
  json(): Promise<unknown> {
    return Promise.resolve().then(() => JSON.parse(this.content) as unknown);
  }
}

/** The SDK sleeps between retries without watching the signal; an aborted call must not wait that sleep out. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new APIUserAbortError());
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * A per-call controller following the caller's signal. The SDK never detaches the listener it adds to the
 * signal it is given, so a long-lived caller signal would otherwise collect one listener per call.
 */
function linkAbort(parent: AbortSignal | undefined): { controller: AbortController; dispose: () => void } {
  const controller = new AbortController();
  if (!parent) return { controller, dispose: () => {} };
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { controller, dispose: () => {} };
  }
  const onAbort = () => controller.abort(parent.reason);
  parent.addEventListener('abort', onAbort, { once: true });
  return { controller, dispose: () => parent.removeEventListener('abort', onAbort) };
}

/** openai-python still reads JSON served with another content type; the SDK hands such a body over as text. */
function parseLenient(body: unknown): unknown {
  if (typeof body !== 'string') return body;
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

/** The outputs of a non-streaming completion; throws a TypeError when the body is not shaped like one. */
function readCompletion(body: unknown): Omit<LMResponse, 'cacheHit' | 'savedUsage'> {
  const response = parseLenient(body);
  if (!isRecord(response)) throw new TypeError('Malformed completion: the body is not a JSON object.');
  const choices: unknown = response.choices;
  if (!Array.isArray(choices)) throw new TypeError('Malformed completion: `choices` is not an array.');
  const outputs = choices.map((choice: unknown, i) => {
    if (!isRecord(choice)) throw new TypeError(`Malformed completion: choice ${i} is not an object.`);
    const content = isRecord(choice.message) ? choice.message.content : null;
    if (content !== null && content !== undefined && typeof content !== 'string')
      throw new TypeError(`Malformed completion: the content of choice ${i} is not a string.`);
    return content ?? '';
  });
  return {
    outputs,
    usage: normalizeUsage(response.usage),
    responseModel: typeof response.model === 'string' ? response.model : null,
    finishReasons: (choices as ChatCompletion['choices']).map((c) => c.finish_reason ?? null),
  };
}

interface PreparedCall {
  client: OpenAI;
  body: Record<string, unknown>;
  requestOptions: RequestOptions;
}

export class OpenAIProvider implements LMProvider {
  private sdkClient: OpenAI | null = null;

  constructor(private readonly options: OpenAIProviderOptions) {}

  async complete(
    request: LMRequest,
    options: LMCallOptions = {},
  ): Promise<Omit<LMResponse, 'cacheHit' | 'savedUsage'>> {
    const { signal } = options;
    const link = linkAbort(signal);
    let response: ChatCompletion;
    try {
      const { client, body, requestOptions } = this.prepare(request);
      // OpenAI rejects stream_options on a non-streaming request.
      delete body.stream_options;
      response = await untilAborted(
        client.chat.completions.create(
          body as unknown as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming,
          { ...requestOptions, signal: link.controller.signal },
        ),
        link.controller.signal,
      );
    } catch (error) {
      throw this.mapError(error, request.model, signal);
    } finally {
      link.dispose();
    }
    try {
      return readCompletion(response);
    } catch (error) {
      // A 200 that is not a chat completion is a failure of the provider call (DSPy: LMUnexpectedError), not a
      // parse error the adapters would retry twice more. [fx: errors/lm_unknown_exception]
      throw toDSPyError(error, request.model);
    }
  }

  async *stream(request: LMRequest, options: LMCallOptions = {}): AsyncGenerator<LMStreamChunk> {
    const callerSignal = options.signal;
    // One controller for the whole call, so the caller's abort, our timers and an early `return()` by the
    // consumer all tear down the same HTTP request.
    const link = linkAbort(callerSignal);
    const controller = link.controller;

    // The SDK's timeout stops at the response headers; httpx (litellm) also bounds every read, so a server that
    // sends headers but no content, or goes silent mid-stream, must not hang the caller forever.
    const firstTokenMs = this.options.firstTokenTimeoutMs ?? this.options.timeoutMs;
    const idleMs = this.options.streamIdleTimeoutMs ?? this.options.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    let timedOut: string | null = null;
    const arm = (ms: number, message: string) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = message;
        controller.abort();
      }, ms);
    };
    const armIdle = () => arm(idleMs, `Stream timed out: no data for ${idleMs} ms.`);
    // Per attempt: one that fails before its headers is the SDK's to retry, with a fresh clock.
    const clock = {
      start: () => arm(firstTokenMs, `Stream timed out: no content within ${firstTokenMs} ms.`),
      stop: () => clearTimeout(timer),
    };
    const fail = (error: unknown): LMError => {
      // The caller's own abort (its deadline, or its client leaving) names the failure before our timers do.
      if (timedOut && !callerSignal?.aborted)
        return toDSPyError(new APIConnectionTimeoutError({ message: timedOut }), request.model);
      return this.mapError(error, request.model, callerSignal);
    };

    let finished = false;
    try {
      let stream: AsyncIterable<ChatCompletionChunk>;
      try {
        const { client, body, requestOptions } = this.prepare(request);
        const existing = isRecord(body.stream_options) ? body.stream_options : {};
        stream = await untilAborted(
          attemptClock.run(clock, () =>
            client.chat.completions.create(
              {
                ...body,
                stream: true,
                stream_options: { ...existing, include_usage: true },
              } as unknown as OpenAI.Chat.ChatCompletionCreateParamsStreaming,
              { ...requestOptions, signal: controller.signal },
            ),
          ),
          controller.signal,
        );
      } catch (error) {
        throw fail(error);
      }

      let usage: Usage | null = null;
      let responseModel: string | null = null;
      let flowing = false;
      try {
        for await (const chunk of stream) {
          // Until the first content the first-token clock runs; role-only chunks do not stop it.
          if (flowing) armIdle();
          responseModel = chunk.model ?? responseModel;
          if (chunk.usage) usage = normalizeUsage(chunk.usage);
          const choice = chunk.choices?.find((c) => c.index === 0);
          const text = choice?.delta?.content ?? '';
          const finishReason = choice?.finish_reason ?? null;
          if (!text && !finishReason) continue;
          flowing = true;
          // A slow consumer is not a silent server.
          clearTimeout(timer);
          yield { text, finishReason, responseModel };
          armIdle();
        }
      } catch (error) {
        if (
          isErrorLike(error) &&
          !(error instanceof OpenAIError) &&
          error.name !== 'SyntaxError' &&
          !controller.signal.aborted
        ) {
          // Body-read failures escape the SDK unwrapped; litellm reports them as APIConnectionError. An unparseable
          // event (SyntaxError) is an unexpected response instead, like an unparseable completion.
          throw fail(new APIConnectionError({ message: `Connection error: ${error.message}`, cause: error }));
        }
        throw fail(error);
      }
      clearTimeout(timer);
      // The SDK ends the iteration quietly when its request is aborted.
      if (controller.signal.aborted) throw fail(new APIUserAbortError());
      finished = true;
      yield { text: '', usage, responseModel };
    } finally {
      clearTimeout(timer);
      link.dispose();
      if (!finished) controller.abort();
    }
  }

  private client(): OpenAI {
    if (this.sdkClient) return this.sdkClient;
    // undici's own fetch over one pooled keep-alive Agent (Node's bundled undici behind the global fetch cannot
    // be configured). headersTimeout and bodyTimeout are off: the SDK's per-attempt timer and the stream timers
    // bound those phases and name the failure.
    const base = this.options.fetch ?? undiciFetch;
    const dispatcher = this.options.fetch
      ? undefined
      : new Agent({
          connect: { timeout: this.options.connectTimeoutMs ?? 10_000 },
          headersTimeout: 0,
          bodyTimeout: 0,
        });
    this.sdkClient = new OpenAI({
      apiKey: this.options.apiKey,
      baseURL: this.options.baseURL,
      timeout: this.options.timeoutMs,
      maxRetries: this.options.maxRetries,
      fetch: (input: string | URL | Request, init?: RequestInit) => sendAttempt(base, input, init),
      ...(dispatcher && { fetchOptions: { dispatcher } }),
      // The SDK logs an unparseable stream event (the model's answer) to the console, outside the service's
      // logger and LOG_PROMPTS; every failure reaches the caller as an error anyway.
      logLevel: 'off',
      defaultHeaders: { 'User-Agent': DSPY_USER_AGENT, ...this.options.defaultHeaders },
    });
    return this.sdkClient;
  }

  /** Builds the wire body the way litellm would from DSPy's kwargs; throws (SDK errors) before any I/O. */
  private prepare(request: LMRequest): PreparedCall {
    const body: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(request.kwargs)) {
      // litellm drops None-valued params.
      if (value === null || value === undefined) continue;
      if (DSPY_ONLY_KWARGS.has(key) || TRANSPORT_KWARGS.has(key) || key === 'model' || key === 'messages')
        continue;
      body[key] = value instanceof StructuredOutputFormat ? toWireResponseFormat(value) : value;
    }
    const kwargs = request.kwargs;
    const requestOptions: RequestOptions = {};
    const headers = {
      ...(isRecord(kwargs.headers) ? kwargs.headers : {}),
      ...(isRecord(kwargs.extra_headers) ? kwargs.extra_headers : {}),
    };
    if (Object.keys(headers).length > 0) requestOptions.headers = headers as Record<string, string>;
    // litellm's `timeout` is in seconds.
    if (typeof kwargs.timeout === 'number' && kwargs.timeout > 0)
      requestOptions.timeout = Math.ceil(kwargs.timeout * 1000);
    if (typeof kwargs.num_retries === 'number' && kwargs.num_retries >= 0)
      requestOptions.maxRetries = kwargs.num_retries;

    let client = this.client();
    const apiKey = typeof kwargs.api_key === 'string' ? kwargs.api_key : undefined;
    const baseURL =
      typeof kwargs.api_base === 'string'
        ? kwargs.api_base
        : typeof kwargs.base_url === 'string'
          ? kwargs.base_url
          : undefined;
    if (apiKey !== undefined || baseURL !== undefined) {
      client = client.withOptions({
        ...(apiKey !== undefined && { apiKey }),
        ...(baseURL !== undefined && { baseURL }),
      });
    }
    return {
      client,
      body: { model: stripOpenAIPrefix(request.model), messages: request.messages, ...body },
      requestOptions,
    };
  }

  /** A call its caller cut short: a deadline (TimeoutError reason) is a timeout, a client that left an abort. */
  private mapError(error: unknown, model: string, signal: AbortSignal | undefined): LMError {
    if (signal?.aborted) {
      return abortError(signal.reason, 'Request was aborted.', {
        model: stripOpenAIPrefix(model),
        provider: 'openai',
        cause: error,
      });
    }
    return toDSPyError(error, model);
  }
}
