/**
 * A real HTTP server on 127.0.0.1 that speaks OpenAI's chat completions API (JSON and SSE), for tests, e2e and
 * benchmarks. Scriptable per request (text, choices, usage, latency, chunking, HTTP failures, hangs, resets, raw
 * bodies); otherwise it answers DSPy ChatAdapter / JSONAdapter prompts with well-formed completions.
 *
 * Dependency-free and quiet on purpose: benchmarks push it at high request rates.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface FakeChoice {
  text: string | null;
  finishReason?: string;
  /** Streaming only: the deltas for this choice (default: split into words). */
  chunks?: string[];
}

/** A successful completion. Every field is optional; what is left out is derived from the request. */
export interface FakeCompletion {
  type?: 'completion';
  /** Content of every choice (the request's `n` decides how many) unless `choices` is given. */
  text?: string | null;
  choices?: Array<string | null | FakeChoice>;
  /** `undefined`: estimated from the prompt and the text. `null`: the response carries no usage at all. */
  usage?: Record<string, unknown> | null;
  /** Reported model (default: the requested one). */
  model?: string;
  finishReason?: string;
  /** Delay before the response headers. */
  latencyMs?: number;
  /** Streaming only: the deltas of choice 0 (default: split into words). */
  chunks?: string[];
  /** Streaming only: delay before each content delta. */
  chunkDelayMs?: number;
  /** Streaming only: destroy the socket after this many content deltas (a connection reset mid-stream). */
  resetAfterChunks?: number;
  /** Streaming only: stop sending after this many content deltas and never finish. */
  hangAfterChunks?: number;
  headers?: Record<string, string>;
}

/** An HTTP failure. The body defaults to OpenAI's `{"error": {message, type, param, code}}` shape. */
export interface FakeFailure {
  type: 'error';
  status: number;
  message?: string;
  /** `error.code` in the body (e.g. `context_length_exceeded`, `rate_limit_exceeded`). */
  code?: string | null;
  /** `error.type` in the body. */
  errorType?: string;
  /** Replaces the whole body: an object is sent as JSON, a string verbatim. */
  body?: unknown;
  headers?: Record<string, string>;
  latencyMs?: number;
}

/** Accept the request and never answer (until the client gives up or the server closes). */
export interface FakeHang {
  type: 'hang';
  /**
   * Send 200 headers first (an event stream for a streaming request, JSON otherwise), then `body` if given, then
   * nothing: a stream with no first chunk, or a completion whose body never ends.
   */
  headers?: boolean;
  body?: string;
}

/** Any response, verbatim: malformed bodies, wrong content types, garbage event streams. */
export interface FakeRaw {
  type: 'raw';
  /** Default 200. */
  status?: number;
  /** Default `application/json`. */
  contentType?: string;
  body: string;
  headers?: Record<string, string>;
  latencyMs?: number;
}

/** Destroy the connection without any response. */
export interface FakeReset {
  type: 'reset';
  latencyMs?: number;
}

/** A string is shorthand for `{ text }`. */
export type FakeAction = string | FakeCompletion | FakeFailure | FakeHang | FakeReset | FakeRaw;

export interface FakeRequest {
  /** 0-based arrival order of chat completion requests. */
  index: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body. */
  body: any;
}

export type FakeResponder = (request: FakeRequest) => FakeAction | Promise<FakeAction>;

export type ExchangeOutcome = 'finished' | 'aborted' | 'reset';

export interface RecordedRequest extends FakeRequest {
  rawBody: string;
  /**
   * 'aborted' when the client closed the connection before the response was complete, 'reset' when the script
   * made the server drop it.
   */
  outcome: 'pending' | ExchangeOutcome;
  /** Settles with the outcome once the exchange is over. */
  closed: Promise<ExchangeOutcome>;
}

export interface FakeOpenAIOptions {
  /** Answers requests the script queue does not cover (default: `dspyResponder`). */
  responder?: FakeResponder;
  /** Keep every request in `requests` (default true; benchmarks may turn it off to keep memory flat). */
  record?: boolean;
}

export interface FakeOpenAI {
  /** Base URL for the SDK, ending in `/v1`. */
  readonly url: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  /** Chat completion requests received (counted even when `record` is off). */
  readonly calls: number;
  /** Connections the client closed before the response was complete. */
  readonly clientAborts: number;
  /** TCP connections accepted so far (not cleared by `reset`), and those still open. */
  readonly connections: number;
  readonly openSockets: number;
  /** Queues actions (or per-request functions) for the next requests, in order. */
  script(...actions: Array<FakeAction | FakeResponder>): void;
  /** Number of scripted actions not yet consumed. */
  readonly pending: number;
  /** Replaces the fallback responder (`null` restores `dspyResponder`). */
  respondWith(responder: FakeResponder | null): void;
  /** Clears the queue, the recorded requests and the counters. */
  reset(): void;
  close(): Promise<void>;
}

const DEFAULT_ERROR_MESSAGES: Record<number, string> = {
  400: 'Invalid request.',
  401: 'Incorrect API key provided.',
  402: 'Payment required.',
  403: 'Permission denied.',
  404: 'The model does not exist or you do not have access to it.',
  408: 'Request timed out.',
  409: 'Conflict.',
  422: 'Unprocessable entity.',
  429: 'Rate limit reached.',
  500: 'The server had an error while processing your request.',
  502: 'Bad gateway.',
  503: 'The engine is currently overloaded, please try again later.',
};

function errorBody(failure: FakeFailure): unknown {
  if (failure.body !== undefined) return failure.body;
  const status = failure.status;
  const type =
    failure.errorType ??
    (status === 429 ? 'requests' : status >= 500 ? 'server_error' : 'invalid_request_error');
  const code =
    failure.code !== undefined
      ? failure.code
      : status === 401
        ? 'invalid_api_key'
        : status === 404
          ? 'model_not_found'
          : status === 429
            ? 'rate_limit_exceeded'
            : null;
  return {
    error: {
      message: failure.message ?? DEFAULT_ERROR_MESSAGES[status] ?? `HTTP ${status}`,
      type,
      param: null,
      code,
    },
  };
}

function isRecord(value: unknown): value is Record<string, any> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

function messagesText(body: any): string {
  if (!Array.isArray(body?.messages)) return '';
  return body.messages
    .map((m: any) =>
      typeof m?.content === 'string'
        ? m.content
        : Array.isArray(m?.content)
          ? m.content.map((p: any) => (typeof p?.text === 'string' ? p.text : '')).join('')
          : '',
    )
    .join('\n');
}

/** Usage shaped like OpenAI's (the details objects included). */
export function fakeUsage(promptTokens: number, completionTokens: number): Record<string, unknown> {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function splitWords(text: string): string[] {
  return text.match(/\s+|\S+\s*/g) ?? [];
}

// ---------------------------------------------------------------------------------------------------------------
// Default responder: a plausible answer to any DSPy ChatAdapter / JSONAdapter prompt.

function resolveRef(root: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = root;
  for (const key of ref.slice(2).split('/')) node = isRecord(node) ? node[key] : undefined;
  return node;
}

/** A value that validates against `schema` (first enum option, first non-null union branch…). */
export function sampleFromSchema(schema: unknown, name: string, root: unknown = schema, depth = 0): unknown {
  if (!isRecord(schema) || depth > 10) return `Fake ${name}.`;
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  if (typeof schema.$ref === 'string')
    return sampleFromSchema(resolveRef(root, schema.$ref), name, root, depth + 1);
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    const branches = schema[key];
    if (Array.isArray(branches) && branches.length > 0) {
      const branch = branches.find((b) => !(isRecord(b) && b.type === 'null')) ?? branches[0];
      return sampleFromSchema(branch, name, root, depth + 1);
    }
  }
  const type = Array.isArray(schema.type) ? schema.type.find((t: unknown) => t !== 'null') : schema.type;
  switch (type) {
    case 'integer':
      return 1;
    case 'number':
      return 0.5;
    case 'boolean':
      return true;
    case 'null':
      return null;
    case 'array':
      return [sampleFromSchema(schema.items, name, root, depth + 1)];
    case 'object':
    case undefined: {
      if (isRecord(schema.properties)) {
        return Object.fromEntries(
          Object.entries(schema.properties).map(([key, prop]) => [
            key,
            sampleFromSchema(prop, key, root, depth + 1),
          ]),
        );
      }
      if (isRecord(schema.additionalProperties)) {
        return { key: sampleFromSchema(schema.additionalProperties, 'value', root, depth + 1) };
      }
      return type === 'object' ? {} : `Fake ${name}.`;
    }
    default:
      return `Fake ${name}.`;
  }
}

/** A typed value for a DSPy type note ("# note: the value you produce must …"). */
function sampleFromNote(note: string | undefined, name: string): unknown {
  if (!note) return `Fake ${name}.`;
  if (note.includes('must be a single int value')) return 1;
  if (note.includes('must be a single float value')) return 0.5;
  if (note.includes('must be True or False')) return true;
  const options = /one of: (.*)$/.exec(note);
  if (options) return options[1].split('; ')[0];
  const schema = /must adhere to the JSON schema: (.*)$/.exec(note);
  if (schema) {
    try {
      const parsed = JSON.parse(schema[1]);
      return sampleFromSchema(parsed, name, parsed);
    } catch {
      return `Fake ${name}.`;
    }
  }
  return `Fake ${name}.`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function messageContent(body: any, role: string, last = false): string {
  const messages: any[] = Array.isArray(body?.messages) ? body.messages : [];
  const matching = messages.filter((m) => m?.role === role && typeof m.content === 'string');
  const message = last ? matching[matching.length - 1] : matching[0];
  return message?.content ?? '';
}

function jsonAdapterFields(system: string): Record<string, string> | null {
  const block = /Outputs will be a JSON object with the following fields\.\n\n(\{[\s\S]*?\n\})/.exec(system);
  if (!block) return null;
  try {
    const parsed = JSON.parse(block[1]);
    return isRecord(parsed) ? (parsed as Record<string, string>) : null;
  } catch {
    return null;
  }
}

/**
 * The completion a well-behaved model would give a DSPy prompt: `[[ ## field ## ]]` sections ending with
 * `[[ ## completed ## ]]` for ChatAdapter, a JSON object for JSONAdapter (or any `response_format`).
 */
export function dspyCompletionText(body: any): string {
  const system = messageContent(body, 'system');
  const user = messageContent(body, 'user', true);
  const responseFormat = body?.response_format;

  if (
    isRecord(responseFormat) &&
    responseFormat.type === 'json_schema' &&
    isRecord(responseFormat.json_schema)
  ) {
    const schema = responseFormat.json_schema.schema;
    return JSON.stringify(sampleFromSchema(schema, 'value', schema));
  }

  const jsonFields = jsonAdapterFields(system);
  if (jsonFields || (isRecord(responseFormat) && responseFormat.type === 'json_object')) {
    const fields =
      jsonFields ??
      Object.fromEntries([...user.matchAll(/`(\w+)`/g)].map((m) => [m[1], `{${m[1]}}`] as [string, string]));
    const value = Object.fromEntries(
      Object.entries(fields).map(([name, template]) => {
        const note = /# note: (.*)$/.exec(String(template))?.[1];
        return [name, sampleFromNote(note, name)];
      }),
    );
    return JSON.stringify(value);
  }

  const reminder = /Respond with the corresponding output fields[^\n]*/.exec(user)?.[0];
  if (reminder) {
    const names = [...reminder.matchAll(/`\[\[ ## (\w+) ## \]\]`/g)]
      .map((m) => m[1])
      .filter((n) => n !== 'completed');
    const sections = names.map((name) => {
      const note = new RegExp(
        `\\[\\[ ## ${escapeRegExp(name)} ## \\]\\]\\n\\{${escapeRegExp(name)}\\}[ \\t]*# note: ([^\\n]*)`,
      ).exec(system)?.[1];
      const value = sampleFromNote(note, name);
      const text =
        typeof value === 'string'
          ? value
          : typeof value === 'boolean'
            ? value
              ? 'True'
              : 'False'
            : JSON.stringify(value);
      return `[[ ## ${name} ## ]]\n${text}`;
    });
    return [...sections, '[[ ## completed ## ]]'].join('\n\n');
  }

  return 'Fake completion.';
}

/** The default fallback responder. */
export const dspyResponder: FakeResponder = (request) => ({ text: dspyCompletionText(request.body) });

// ---------------------------------------------------------------------------------------------------------------

interface NormalizedChoice {
  text: string | null;
  finishReason: string;
  chunks: string[] | undefined;
}

export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const record = options.record ?? true;
  let fallback: FakeResponder = options.responder ?? dspyResponder;
  let queue: Array<FakeAction | FakeResponder> = [];
  let requests: RecordedRequest[] = [];
  let calls = 0;
  let clientAborts = 0;
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  let connections = 0;

  const delay = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  const sendJson = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    const payload = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
      'content-length': Buffer.byteLength(payload),
      ...headers,
    });
    res.end(payload);
  };

  const readBody = (req: IncomingMessage) =>
    new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  const normalizeChoices = (action: FakeCompletion, body: any): NormalizedChoice[] => {
    const finishReason = action.finishReason ?? 'stop';
    if (action.choices) {
      return action.choices.map((c, i) =>
        isRecord(c)
          ? {
              text: c.text,
              finishReason: c.finishReason ?? finishReason,
              chunks: c.chunks ?? (i === 0 ? action.chunks : undefined),
            }
          : { text: c, finishReason, chunks: i === 0 ? action.chunks : undefined },
      );
    }
    const n = typeof body?.n === 'number' && body.n > 0 ? body.n : 1;
    const text = action.text !== undefined ? action.text : dspyCompletionText(body);
    return Array.from({ length: n }, (_, i) => ({
      text,
      finishReason,
      chunks: i === 0 ? action.chunks : undefined,
    }));
  };

  const completionUsage = (action: FakeCompletion, body: any, choices: NormalizedChoice[]) => {
    if (action.usage !== undefined) return action.usage;
    const completionTokens = choices.reduce((sum, c) => sum + (c.text ? estimateTokens(c.text) : 0), 0);
    return fakeUsage(estimateTokens(messagesText(body)), completionTokens);
  };

  const respondCompletion = async (
    res: ServerResponse,
    action: FakeCompletion,
    body: any,
    index: number,
    gone: () => boolean,
    drop: () => void,
  ) => {
    const choices = normalizeChoices(action, body);
    const usage = completionUsage(action, body, choices);
    const model = action.model ?? (typeof body?.model === 'string' ? body.model : 'fake-model');
    const id = `chatcmpl-fake-${index}`;
    const created = Math.floor(Date.now() / 1000);
    const headers = { 'x-request-id': `req_fake_${index}`, ...action.headers };

    if (body?.stream !== true) {
      const response: Record<string, unknown> = {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: choices.map((c, i) => ({
          index: i,
          message: { role: 'assistant', content: c.text, refusal: null, annotations: [] },
          logprobs: null,
          finish_reason: c.finishReason,
        })),
        service_tier: 'default',
        system_fingerprint: 'fp_fake',
      };
      if (usage !== null) response.usage = usage;
      sendJson(res, 200, response, headers);
      return;
    }

    const includeUsage = isRecord(body.stream_options) && body.stream_options.include_usage === true;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      ...headers,
    });
    const base = {
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      service_tier: 'default',
      system_fingerprint: 'fp_fake',
    };
    const send = (choicesPart: unknown[], extra: Record<string, unknown> = {}) =>
      new Promise<void>((resolve) => {
        const chunk = { ...base, choices: choicesPart, ...(includeUsage ? { usage: null } : {}), ...extra };
        res.write(`data: ${JSON.stringify(chunk)}\n\n`, () => resolve());
      });

    let contentDeltas = 0;
    for (const [i, choice] of choices.entries()) {
      await send([
        {
          index: i,
          delta: { role: 'assistant', content: '', refusal: null },
          logprobs: null,
          finish_reason: null,
        },
      ]);
      const pieces = choice.text === null ? [] : (choice.chunks ?? splitWords(choice.text));
      for (const piece of pieces) {
        if (action.chunkDelayMs) await delay(action.chunkDelayMs);
        if (gone()) return;
        if (action.resetAfterChunks !== undefined && contentDeltas >= action.resetAfterChunks) {
          drop();
          return;
        }
        if (action.hangAfterChunks !== undefined && contentDeltas >= action.hangAfterChunks) return;
        await send([{ index: i, delta: { content: piece }, logprobs: null, finish_reason: null }]);
        contentDeltas++;
      }
      if (action.resetAfterChunks !== undefined && contentDeltas >= action.resetAfterChunks) {
        drop();
        return;
      }
      if (action.hangAfterChunks !== undefined && contentDeltas >= action.hangAfterChunks) return;
      await send([{ index: i, delta: {}, logprobs: null, finish_reason: choice.finishReason }]);
    }
    if (gone()) return;
    if (includeUsage && usage !== null) await send([], { usage });
    res.end('data: [DONE]\n\n');
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    const rawBody = await readBody(req);
    if (method !== 'POST' || path !== '/v1/chat/completions') {
      sendJson(
        res,
        404,
        errorBody({
          type: 'error',
          status: 404,
          message: `Unknown route ${method} ${path}`,
          code: 'unknown_url',
        }),
      );
      return;
    }
    let body: any;
    try {
      body = JSON.parse(rawBody);
    } catch {
      sendJson(
        res,
        400,
        errorBody({
          type: 'error',
          status: 400,
          message: 'We could not parse the JSON body of your request.',
        }),
      );
      return;
    }

    const index = calls++;
    let outcome: RecordedRequest['outcome'] = 'pending';
    let settle!: (value: ExchangeOutcome) => void;
    const closed = new Promise<ExchangeOutcome>((resolve) => (settle = resolve));
    let dropped = false;
    const drop = () => {
      dropped = true;
      req.socket.destroy();
    };
    const entry: RecordedRequest | null = record
      ? { index, method, path, headers: req.headers, body, rawBody, outcome, closed }
      : null;
    if (entry) requests.push(entry);
    res.on('close', () => {
      outcome = res.writableFinished ? 'finished' : dropped ? 'reset' : 'aborted';
      if (outcome === 'aborted') clientAborts++;
      if (entry) entry.outcome = outcome;
      settle(outcome);
    });
    const gone = () => outcome !== 'pending';

    const next = queue.length > 0 ? queue.shift()! : fallback;
    const request: FakeRequest = { index, method, path, headers: req.headers, body };
    const scripted = typeof next === 'function' ? await next(request) : next;
    const action: Exclude<FakeAction, string> = typeof scripted === 'string' ? { text: scripted } : scripted;

    switch (action.type) {
      case 'hang':
        if (action.headers) {
          res.writeHead(200, {
            'content-type': body?.stream === true ? 'text/event-stream; charset=utf-8' : 'application/json',
            'x-request-id': `req_fake_${index}`,
          });
          if (action.body) res.write(action.body);
          else res.flushHeaders();
        }
        return;
      case 'raw':
        if (action.latencyMs) await delay(action.latencyMs);
        if (gone()) return;
        res.writeHead(action.status ?? 200, {
          'content-type': action.contentType ?? 'application/json',
          'content-length': Buffer.byteLength(action.body),
          'x-request-id': `req_fake_${index}`,
          ...action.headers,
        });
        res.end(action.body);
        return;
      case 'reset':
        if (action.latencyMs) await delay(action.latencyMs);
        drop();
        return;
      case 'error':
        if (action.latencyMs) await delay(action.latencyMs);
        if (gone()) return;
        sendJson(res, action.status, errorBody(action), {
          'x-request-id': `req_fake_${index}`,
          ...action.headers,
        });
        return;
      default:
        if (action.latencyMs) await delay(action.latencyMs);
        if (gone()) return;
        await respondCompletion(res, action, body, index, gone, drop);
    }
  };

  const server = createServer({ noDelay: true }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) res.destroy();
      else
        sendJson(
          res,
          500,
          errorBody({ type: 'error', status: 500, message: `Fake server failure: ${String(error)}` }),
        );
    });
  });
  server.on('connection', (socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    get requests() {
      return requests;
    },
    get calls() {
      return calls;
    },
    get clientAborts() {
      return clientAborts;
    },
    get connections() {
      return connections;
    },
    get openSockets() {
      return sockets.size;
    },
    get pending() {
      return queue.length;
    },
    script(...actions) {
      queue.push(...actions);
    },
    respondWith(responder) {
      fallback = responder ?? dspyResponder;
    },
    reset() {
      queue = [];
      requests = [];
      calls = 0;
      clientAborts = 0;
    },
    close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
    },
  };
}
