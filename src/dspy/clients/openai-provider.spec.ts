import { createServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';

import { OpenAIError } from 'openai';

import { startFakeOpenAI, type FakeOpenAI } from '../../../test/support/fake-openai';
import {
  normalizeUsage,
  OpenAIProvider,
  toStrictJsonSchema,
  type OpenAIProviderOptions,
} from './openai-provider';
import { parseRetryAfter, toDSPyError } from './provider-errors';
import { StructuredOutputFormat, type LMRequest, type LMStreamChunk } from './types';
import {
  ContextWindowExceededError,
  DSPyError,
  LMAbortedError,
  LMAuthError,
  LMBillingError,
  LMError,
  LMInvalidRequestError,
  LMNotConfiguredError,
  LMRateLimitError,
  LMServerError,
  LMTimeoutError,
  LMTransportError,
  LMUnexpectedError,
  LMUnsupportedModelError,
  isRetryableLMError,
} from '../utils/exceptions';

const QA_SCHEMA = {
  additionalProperties: false,
  properties: {
    reasoning: { title: 'Reasoning', type: 'string' },
    answer: { title: 'Answer', type: 'string' },
    key_concepts: { title: 'Key Concepts', type: 'string' },
    question_type: { title: 'Question Type', type: 'string' },
  },
  required: ['reasoning', 'answer', 'key_concepts', 'question_type'],
  title: 'DSPyProgramOutputs',
  type: 'object',
};

// fixture json_adapter_format/structured_output_schema_qa_cot.json, key litellm_wire_response_format_approximation
const QA_WIRE_FORMAT = {
  type: 'json_schema',
  json_schema: { schema: QA_SCHEMA, name: 'DSPyProgramOutputs', strict: true },
};

function request(kwargs: Record<string, unknown> = {}, model = 'openai/gpt-4o-mini'): LMRequest {
  return {
    model,
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'What causes the seasons on Earth?' },
    ],
    kwargs: { temperature: null, max_tokens: null, ...kwargs },
  };
}

async function collect(iterable: AsyncIterable<LMStreamChunk>): Promise<LMStreamChunk[]> {
  const chunks: LMStreamChunk[] = [];
  for await (const chunk of iterable) chunks.push(chunk);
  return chunks;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('OpenAIProvider over HTTP', () => {
  let server: FakeOpenAI;
  const providers: OpenAIProvider[] = [];

  const provider = (overrides: Partial<OpenAIProviderOptions> = {}) => {
    const p = new OpenAIProvider({
      apiKey: 'sk-test',
      baseURL: server.url,
      timeoutMs: 5000,
      maxRetries: 0,
      ...overrides,
    });
    providers.push(p);
    return p;
  };

  beforeAll(async () => {
    server = await startFakeOpenAI();
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(() => server.reset());

  describe('request shape', () => {
    it('strips the openai/ prefix, drops nulls and DSPy-only keys, keeps unknown keys', async () => {
      server.script('ok');
      await provider().complete(request({ top_p: 0.9, n: 1, rollout_id: 3, cache: false, stop: undefined }));

      expect(server.requests).toHaveLength(1);
      const { body, headers } = server.requests[0];
      expect(body).toEqual({
        model: 'gpt-4o-mini',
        messages: [
          { role: 'system', content: 'You are terse.' },
          { role: 'user', content: 'What causes the seasons on Earth?' },
        ],
        top_p: 0.9,
        n: 1,
      });
      expect(headers.authorization).toBe('Bearer sk-test');
      expect(headers['user-agent']).toBe('DSPy/3.3.1');
      expect(server.requests[0].path).toBe('/v1/chat/completions');
      await expect(server.requests[0].closed).resolves.toBe('finished');
    });

    it('leaves other provider prefixes alone', async () => {
      server.script('ok');
      await provider().complete(request({}, 'hosted_vllm/meta-llama/Llama-3-8B'));
      expect(server.requests[0].body.model).toBe('hosted_vllm/meta-llama/Llama-3-8B');
    });

    it('sends a StructuredOutputFormat in the wire form litellm produces', async () => {
      server.script('{}');
      const format = new StructuredOutputFormat('DSPyProgramOutputs', structuredClone(QA_SCHEMA));
      await provider().complete(request({ response_format: format }));
      expect(server.requests[0].body.response_format).toEqual(QA_WIRE_FORMAT);
      expect(Object.keys(server.requests[0].body.response_format.json_schema)).toEqual([
        'schema',
        'name',
        'strict',
      ]);
      // The format object is shared with the cache key; it must not be mutated.
      expect(format.schema).toEqual(QA_SCHEMA);
    });

    it('passes json_object response formats through unchanged', async () => {
      server.script('{}');
      await provider().complete(request({ response_format: { type: 'json_object' } }));
      expect(server.requests[0].body.response_format).toEqual({ type: 'json_object' });
    });

    it('turns litellm transport kwargs into request options instead of body fields', async () => {
      server.script('ok');
      await provider().complete(
        request({
          headers: { 'X-Trace': 'abc' },
          api_key: 'sk-other',
          timeout: 30,
          num_retries: 0,
          retry_strategy: 'x',
        }),
      );
      const { body, headers } = server.requests[0];
      expect(Object.keys(body).sort()).toEqual(['messages', 'model']);
      expect(headers['x-trace']).toBe('abc');
      expect(headers.authorization).toBe('Bearer sk-other');
    });

    it('merges the caller defaultHeaders', async () => {
      server.script('ok');
      await provider({ defaultHeaders: { 'X-Tenant': 't1' } }).complete(request());
      expect(server.requests[0].headers['x-tenant']).toBe('t1');
      expect(server.requests[0].headers['user-agent']).toBe('DSPy/3.3.1');
    });
  });

  describe('complete', () => {
    it('returns every choice, finish reasons, the response model and litellm-shaped usage', async () => {
      server.script({
        choices: ['first', { text: null, finishReason: 'length' }],
        model: 'gpt-4o-mini-2024-07-18',
        usage: {
          prompt_tokens: 412,
          completion_tokens: 96,
          total_tokens: 508,
          completion_tokens_details: {
            accepted_prediction_tokens: 0,
            audio_tokens: 0,
            reasoning_tokens: 0,
            rejected_prediction_tokens: 0,
          },
          prompt_tokens_details: { audio_tokens: 0, cached_tokens: 0 },
        },
      });
      const result = await provider().complete(request({ n: 2 }));
      expect(result.outputs).toEqual(['first', '']);
      expect(result.finishReasons).toEqual(['stop', 'length']);
      expect(result.responseModel).toBe('gpt-4o-mini-2024-07-18');
      // fixture lm/request_default_lm.json get_lm_usage
      expect(result.usage).toEqual({
        completion_tokens: 96,
        prompt_tokens: 412,
        total_tokens: 508,
        completion_tokens_details: {
          accepted_prediction_tokens: 0,
          audio_tokens: 0,
          reasoning_tokens: 0,
          rejected_prediction_tokens: 0,
          text_tokens: null,
        },
        prompt_tokens_details: { audio_tokens: 0, cached_tokens: 0, text_tokens: null, image_tokens: null },
      });
    });

    it('reports absent usage details as null', async () => {
      server.script({ text: 'x', usage: { prompt_tokens: 300, completion_tokens: 40, total_tokens: 340 } });
      const result = await provider().complete(request());
      expect(result.usage).toEqual({
        completion_tokens: 40,
        prompt_tokens: 300,
        total_tokens: 340,
        completion_tokens_details: null,
        prompt_tokens_details: null,
      });
    });

    it('answers DSPy ChatAdapter prompts by default', async () => {
      const result = await provider().complete({
        model: 'openai/gpt-4o-mini',
        messages: [
          {
            role: 'system',
            content: '[[ ## n ## ]]\n{n}        # note: the value you produce must be a single int value\n',
          },
          {
            role: 'user',
            content:
              'Respond with the corresponding output fields, starting with the field `[[ ## reasoning ## ]]`, then `[[ ## n ## ]]` (must be formatted as a valid Python int), and then ending with the marker for `[[ ## completed ## ]]`.',
          },
        ],
        kwargs: {},
      });
      expect(result.outputs).toEqual([
        '[[ ## reasoning ## ]]\nFake reasoning.\n\n[[ ## n ## ]]\n1\n\n[[ ## completed ## ]]',
      ]);
    });
  });

  describe('stream', () => {
    it('yields the text deltas of choice 0, then a final chunk with usage', async () => {
      server.script({
        chunks: ['Hel', 'lo', ' world'],
        usage: { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13 },
        model: 'gpt-4o-mini-2024-07-18',
      });
      const chunks = await collect(provider().stream(request({ rollout_id: 1 })));

      expect(chunks.map((c) => c.text)).toEqual(['Hel', 'lo', ' world', '', '']);
      expect(chunks[3].finishReason).toBe('stop');
      expect(chunks[4]).toEqual({
        text: '',
        usage: {
          completion_tokens: 3,
          prompt_tokens: 10,
          total_tokens: 13,
          completion_tokens_details: null,
          prompt_tokens_details: null,
        },
        responseModel: 'gpt-4o-mini-2024-07-18',
      });
      const { body } = server.requests[0];
      expect(body.stream).toBe(true);
      expect(body.stream_options).toEqual({ include_usage: true });
      expect(body.model).toBe('gpt-4o-mini');
      expect(body).not.toHaveProperty('rollout_id');
      expect(body).not.toHaveProperty('temperature');
    });

    it('ignores the deltas of other choices', async () => {
      server.script({
        choices: [
          { text: 'a b', chunks: ['a', ' b'] },
          { text: 'zzz', chunks: ['zzz'] },
        ],
      });
      const chunks = await collect(provider().stream(request({ n: 2 })));
      expect(chunks.map((c) => c.text).join('')).toBe('a b');
    });

    it('ends with usage null when the server sends none', async () => {
      server.script({ chunks: ['hi'], usage: null });
      const chunks = await collect(provider().stream(request()));
      expect(chunks[chunks.length - 1]).toEqual({ text: '', usage: null, responseModel: 'gpt-4o-mini' });
    });
  });

  describe('cancellation', () => {
    it('aborts a pending completion and closes the HTTP request', async () => {
      server.script({ type: 'hang' });
      const controller = new AbortController();
      const pending = rejection(provider().complete(request(), { signal: controller.signal }));
      await waitFor(() => server.requests.length === 1);
      controller.abort();

      const error = await pending;
      expect(error).toBeInstanceOf(LMAbortedError);
      expect((error as LMAbortedError).code).toBe('aborted');
      expect(isRetryableLMError(error)).toBe(false);
      await expect(server.requests[0].closed).resolves.toBe('aborted');
    });

    it('does not send anything when the signal is already aborted', async () => {
      const error = await rejection(provider().complete(request(), { signal: AbortSignal.abort() }));
      expect(error).toBeInstanceOf(LMAbortedError);
      expect(server.calls).toBe(0);
    });

    it('aborts a stream mid-way and closes the HTTP request', async () => {
      server.script({ chunks: Array.from({ length: 50 }, (_, i) => `w${i} `), chunkDelayMs: 20 });
      const controller = new AbortController();
      const iterator = provider().stream(request(), { signal: controller.signal })[Symbol.asyncIterator]();

      expect((await iterator.next()).value).toMatchObject({ text: 'w0 ' });
      expect((await iterator.next()).value).toMatchObject({ text: 'w1 ' });
      controller.abort();

      const error = await rejection(iterator.next());
      expect(error).toBeInstanceOf(LMAbortedError);
      await expect(server.requests[0].closed).resolves.toBe('aborted');
    });

    it('closes the HTTP request when the consumer stops iterating', async () => {
      server.script({ chunks: Array.from({ length: 50 }, (_, i) => `w${i} `), chunkDelayMs: 20 });
      for await (const chunk of provider().stream(request())) {
        expect(chunk.text).toBe('w0 ');
        break;
      }
      await expect(server.requests[0].closed).resolves.toBe('aborted');
    });
  });

  describe('error mapping', () => {
    const cases: Array<{
      name: string;
      status: number;
      message: string;
      code?: string | null;
      headers?: Record<string, string>;
      expected: new (...args: any[]) => LMError;
      errorCode: string;
      retryAfter?: number | null;
    }> = [
      {
        name: '401 (fixture lm_auth)',
        status: 401,
        message: 'Incorrect API key provided',
        expected: LMAuthError,
        errorCode: 'auth',
      },
      {
        name: '403',
        status: 403,
        message: 'Project does not have access',
        expected: LMAuthError,
        errorCode: 'auth',
      },
      {
        name: '402',
        status: 402,
        message: 'Insufficient credits',
        expected: LMBillingError,
        errorCode: 'billing',
      },
      {
        name: '404',
        status: 404,
        message: 'The model `gpt-9` does not exist',
        expected: LMUnsupportedModelError,
        errorCode: 'unsupported_model',
      },
      {
        name: '408',
        status: 408,
        message: 'Request Timeout',
        expected: LMTimeoutError,
        errorCode: 'timeout',
      },
      {
        name: '429 + retry-after (fixture lm_rate_limit)',
        status: 429,
        message: 'Rate limit reached',
        headers: { 'retry-after': '2.5' },
        expected: LMRateLimitError,
        errorCode: 'rate_limit',
        retryAfter: 2.5,
      },
      {
        name: '429 + retry-after-ms',
        status: 429,
        message: 'Rate limit reached',
        headers: { 'retry-after-ms': '750' },
        expected: LMRateLimitError,
        errorCode: 'rate_limit',
        retryAfter: 0.75,
      },
      {
        name: '400 context_length_exceeded',
        status: 400,
        message:
          "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.",
        code: 'context_length_exceeded',
        expected: ContextWindowExceededError,
        errorCode: 'context_window_exceeded',
      },
      {
        name: '400 context window by message only',
        status: 400,
        message: "This model's maximum context length is 8192 tokens.",
        code: null,
        expected: ContextWindowExceededError,
        errorCode: 'context_window_exceeded',
      },
      {
        name: '400 other (fixture lm_bad_request)',
        status: 400,
        message: 'Invalid parameter: temperature',
        code: 'invalid_value',
        expected: LMInvalidRequestError,
        errorCode: 'invalid_request',
      },
      {
        name: '422',
        status: 422,
        message: 'Unprocessable',
        expected: LMInvalidRequestError,
        errorCode: 'invalid_request',
      },
      {
        name: '500 (fixture lm_server_error)',
        status: 500,
        message: 'The server had an error',
        expected: LMServerError,
        errorCode: 'server',
      },
      {
        name: '503',
        status: 503,
        message: 'The engine is currently overloaded',
        expected: LMServerError,
        errorCode: 'server',
      },
    ];

    it.each(cases)('$name → $errorCode', async (c) => {
      server.script({
        type: 'error',
        status: c.status,
        message: c.message,
        code: c.code,
        headers: c.headers,
      });
      const error = await rejection(provider().complete(request()));

      expect(error).toBeInstanceOf(c.expected);
      expect(error).toBeInstanceOf(LMError);
      const e = error as DSPyError;
      expect(e.constructor).toBe(c.expected);
      expect(e.code).toBe(c.errorCode);
      expect(e.message).toBe(`[gpt-4o-mini] ${c.message}`);
      expect(e.model).toBe('gpt-4o-mini');
      expect(e.provider).toBe('openai');
      expect(e.status).toBe(c.status);
      expect(e.requestId).toBe('req_fake_0');
      expect(e.retryAfter).toBe(c.retryAfter ?? null);
      if (c.code !== undefined) expect(e.providerCode).toBe(c.code);
      expect(server.calls).toBe(1);
    });

    it('maps a failure of the streaming request the same way', async () => {
      server.script({
        type: 'error',
        status: 429,
        message: 'Rate limit reached',
        headers: { 'retry-after': '1' },
      });
      const error = await rejection(collect(provider().stream(request())));
      expect(error).toBeInstanceOf(LMRateLimitError);
      expect((error as LMRateLimitError).retryAfter).toBe(1);
      expect((error as LMRateLimitError).message).toBe('[gpt-4o-mini] Rate limit reached');
    });

    it('maps connection refused to LMTransportError', async () => {
      const closed = createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
      const port = (closed.address() as AddressInfo).port;
      await new Promise<void>((r) => closed.close(() => r()));

      const error = await rejection(provider({ baseURL: `http://127.0.0.1:${port}/v1` }).complete(request()));
      expect(error).toBeInstanceOf(LMTransportError);
      const e = error as LMTransportError;
      expect(e.code).toBe('transport');
      expect(e.status).toBeNull();
      expect(e.model).toBe('gpt-4o-mini');
      expect(isRetryableLMError(e)).toBe(true);
    });

    it('maps a connection reset before the response to LMTransportError', async () => {
      server.script({ type: 'reset' });
      const error = await rejection(provider().complete(request()));
      expect(error).toBeInstanceOf(LMTransportError);
    });

    it('maps a connection reset mid-stream to LMTransportError', async () => {
      server.script({ chunks: ['a', 'b', 'c', 'd'], resetAfterChunks: 2 });
      const texts: string[] = [];
      const error = await rejection(
        (async () => {
          for await (const chunk of provider().stream(request())) texts.push(chunk.text);
        })(),
      );
      expect(error).toBeInstanceOf(LMTransportError);
      expect((error as LMTransportError).model).toBe('gpt-4o-mini');
      expect(texts).toEqual(['a', 'b']);
      await expect(server.requests[0].closed).resolves.toBe('reset');
      expect(server.clientAborts).toBe(0);
    });

    it('maps a request timeout to LMTimeoutError and closes the HTTP request', async () => {
      server.script({ type: 'hang' });
      const started = Date.now();
      const error = await rejection(provider({ timeoutMs: 200 }).complete(request()));
      expect(error).toBeInstanceOf(LMTimeoutError);
      const e = error as LMTimeoutError;
      expect(e.code).toBe('timeout');
      expect(e.status).toBeNull();
      expect(e.message).toBe('[gpt-4o-mini] Request timed out.');
      expect(Date.now() - started).toBeLessThan(2000);
      await expect(server.requests[0].closed).resolves.toBe('aborted');
    });

    it('times out a stream that goes silent', async () => {
      server.script({ chunks: ['a', 'b', 'c'], hangAfterChunks: 1 });
      const texts: string[] = [];
      const error = await rejection(
        (async () => {
          for await (const chunk of provider({ timeoutMs: 200 }).stream(request())) texts.push(chunk.text);
        })(),
      );
      expect(error).toBeInstanceOf(LMTimeoutError);
      expect(texts).toEqual(['a']);
      await expect(server.requests[0].closed).resolves.toBe('aborted');
    });

    it('reports a missing API key as LMNotConfiguredError', async () => {
      const saved = process.env.OPENAI_API_KEY;
      delete process.env.OPENAI_API_KEY;
      try {
        const error = await rejection(provider({ apiKey: undefined }).complete(request()));
        expect(error).toBeInstanceOf(LMNotConfiguredError);
        expect((error as LMNotConfiguredError).code).toBe('not_configured');
        expect(server.calls).toBe(0);
      } finally {
        if (saved !== undefined) process.env.OPENAI_API_KEY = saved;
      }
    });

    it('lets the SDK retry retryable failures when maxRetries > 0', async () => {
      server.script({ type: 'error', status: 503, headers: { 'retry-after-ms': '1' } }, 'recovered');
      const result = await provider({ maxRetries: 1 }).complete(request());
      expect(result.outputs).toEqual(['recovered']);
      expect(server.calls).toBe(2);
    });

    it('does not retry with maxRetries 0', async () => {
      server.script({ type: 'error', status: 503, headers: { 'retry-after-ms': '1' } }, 'recovered');
      await expect(provider().complete(request())).rejects.toBeInstanceOf(LMServerError);
      expect(server.calls).toBe(1);
      expect(server.pending).toBe(1);
    });

    it.each([
      ['a null choice', { choices: [null] }],
      ['choices that are not an array', { choices: 'none' }],
      ['content that is not a string', { choices: [{ index: 0, message: { content: 5 } }] }],
    ])('maps a 200 with %s to LMUnexpectedError (fixture lm_unknown_exception)', async (_name, body) => {
      server.script({ type: 'error', status: 200, body: { id: 'x', object: 'chat.completion', ...body } });
      const error = await provider()
        .complete(request())
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LMUnexpectedError);
      expect((error as LMUnexpectedError).model).toBe('openai/gpt-4o-mini');
    });
  });

  describe('timeouts', () => {
    const text = (chunks: LMStreamChunk[]) => chunks.map((c) => c.text).join('');

    it("ends at once when aborted during the SDK's retry backoff, without another attempt", async () => {
      server.script({ type: 'error', status: 503, headers: { 'retry-after-ms': '2000' } });
      const controller = new AbortController();
      const started = Date.now();
      const pending = rejection(
        provider({ maxRetries: 2 }).complete(request(), { signal: controller.signal }),
      );
      await waitFor(() => server.requests.length === 1);
      await server.requests[0].closed;
      controller.abort(new DOMException('deadline', 'TimeoutError'));
      expect(await pending).toBeInstanceOf(LMTimeoutError);
      // Without the race the call would sleep out the 2 s backoff (which runs on behind it, sending nothing).
      expect(Date.now() - started).toBeLessThan(1500);
      await new Promise((r) => setTimeout(r, 50));
      expect(server.calls).toBe(1);
    });

    it('bounds a completion whose body never ends by timeoutMs, and retries it like a failed connection', async () => {
      server.script({ type: 'hang', headers: true, body: '{"id":"chatcmpl-1","choi' }, 'recovered');
      expect((await provider({ timeoutMs: 200, maxRetries: 1 }).complete(request())).outputs).toEqual([
        'recovered',
      ]);
      expect(server.calls).toBe(2);
      await expect(server.requests[0].closed).resolves.toBe('aborted');

      server.reset();
      server.script({ type: 'hang', headers: true, body: '{"id":"chatcmpl-2","choi' });
      const error = await rejection(provider({ timeoutMs: 200 }).complete(request()));
      expect(error).toBeInstanceOf(LMTimeoutError);
      await expect(server.requests[0].closed).resolves.toBe('aborted');
    });

    it('times out a stream with headers but no content chunk after firstTokenTimeoutMs', async () => {
      server.script({ type: 'hang', headers: true });
      const error = await rejection(
        collect(provider({ firstTokenTimeoutMs: 200, streamIdleTimeoutMs: 5000 }).stream(request())),
      );
      expect(error).toBeInstanceOf(LMTimeoutError);
      expect((error as LMTimeoutError).message).toBe(
        '[gpt-4o-mini] Stream timed out: no content within 200 ms.',
      );
      await expect(server.requests[0].closed).resolves.toBe('aborted');
      expect(server.calls).toBe(1);
    });

    it('keeps the first-token clock running through role-only chunks', async () => {
      server.script({ chunks: ['never'], hangAfterChunks: 0 });
      const error = await rejection(
        collect(provider({ firstTokenTimeoutMs: 200, streamIdleTimeoutMs: 5000 }).stream(request())),
      );
      expect((error as LMTimeoutError).message).toContain('no content within 200 ms');
    });

    it('restarts the first-token clock for each attempt the SDK makes', async () => {
      // Per call, the first content would come ~750 ms after the first send; per attempt, ~250 ms after.
      server.script(
        { type: 'error', status: 503, headers: { 'retry-after-ms': '500' } },
        {
          text: 'second attempt',
          latencyMs: 250,
        },
      );
      const chunks = await collect(provider({ firstTokenTimeoutMs: 600, maxRetries: 1 }).stream(request()));
      expect(text(chunks)).toBe('second attempt');
      expect(server.calls).toBe(2);
    });

    it('times out a silent stream after streamIdleTimeoutMs, independently of timeoutMs', async () => {
      server.script({ chunks: ['a', 'b', 'c'], hangAfterChunks: 1 });
      const texts: string[] = [];
      const error = await rejection(
        (async () => {
          for await (const chunk of provider({ streamIdleTimeoutMs: 200 }).stream(request()))
            texts.push(chunk.text);
        })(),
      );
      expect((error as LMTimeoutError).message).toBe('[gpt-4o-mini] Stream timed out: no data for 200 ms.');
      expect(texts).toEqual(['a']);
      await expect(server.requests[0].closed).resolves.toBe('aborted');
    });

    it('maps a caller signal aborted with a TimeoutError reason (a deadline) to LMTimeoutError', async () => {
      server.script({ type: 'hang' }, { chunks: ['a', 'b', 'c'], hangAfterChunks: 1 });
      const deadline = () => new DOMException('The request deadline of 50 ms passed.', 'TimeoutError');

      const first = new AbortController();
      const pending = rejection(provider().complete(request(), { signal: first.signal }));
      await waitFor(() => server.requests.length === 1);
      first.abort(deadline());
      const error = await pending;
      expect(error).toBeInstanceOf(LMTimeoutError);
      expect((error as LMTimeoutError).message).toBe('[gpt-4o-mini] The request deadline of 50 ms passed.');
      await expect(server.requests[0].closed).resolves.toBe('aborted');

      const second = new AbortController();
      const texts: string[] = [];
      const streamed = rejection(
        (async () => {
          for await (const chunk of provider().stream(request(), { signal: second.signal })) {
            texts.push(chunk.text);
            second.abort(deadline());
          }
        })(),
      );
      expect(await streamed).toBeInstanceOf(LMTimeoutError);
      expect(texts).toEqual(['a']);
      await expect(server.requests[1].closed).resolves.toBe('aborted');
    });

    it.each<[string, Parameters<FakeOpenAI['script']>[0]]>([
      ['a non-JSON body served as JSON', { type: 'raw', body: '<html>upstream proxy error</html>' }],
      ['a JSON body without choices', { type: 'raw', body: '{"id":"x","object":"chat.completion"}' }],
      ['an HTML page', { type: 'raw', contentType: 'text/html', body: '<html><body>Sign in</body></html>' }],
    ])('maps a 200 with %s to LMUnexpectedError', async (_name, action) => {
      server.script(action);
      expect(await rejection(provider().complete(request()))).toBeInstanceOf(LMUnexpectedError);
    });

    it('reads a completion served with another content type, as openai-python does', async () => {
      server.script({
        type: 'raw',
        contentType: 'text/plain',
        body: JSON.stringify({
          choices: [{ index: 0, message: { content: 'lenient' }, finish_reason: 'stop' }],
        }),
      });
      expect((await provider().complete(request())).outputs).toEqual(['lenient']);
    });

    it('maps an event stream with unparseable events to LMUnexpectedError', async () => {
      server.script({ type: 'raw', contentType: 'text/event-stream', body: 'data: {not json\n\n' });
      expect(await rejection(collect(provider().stream(request())))).toBeInstanceOf(LMUnexpectedError);
    });

    it('bounds a connect that never completes (a TLS handshake the server never answers)', async () => {
      // Accepts TCP, never speaks TLS: the connect phase of an https:// upstream stalls.
      const sockets = new Set<Socket>();
      const silent = createNetServer((socket) => {
        sockets.add(socket.on('error', () => undefined));
      });
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
      const url = `https://127.0.0.1:${(silent.address() as AddressInfo).port}/v1`;
      try {
        const started = Date.now();
        // The connect timeout fires long before the per-attempt timeout.
        const p = provider({ baseURL: url, connectTimeoutMs: 200, timeoutMs: 20_000 });
        const error = await rejection(p.complete(request()));
        expect(error).toBeInstanceOf(LMTimeoutError);
        expect(Date.now() - started).toBeLessThan(5000);
      } finally {
        for (const socket of sockets) socket.destroy();
        silent.close();
      }
    });
  });
});

describe('fake OpenAI server defaults', () => {
  let server: FakeOpenAI;
  let lm: OpenAIProvider;

  beforeAll(async () => {
    server = await startFakeOpenAI();
    lm = new OpenAIProvider({ apiKey: 'sk-test', baseURL: server.url, timeoutMs: 5000, maxRetries: 0 });
  });
  afterAll(async () => {
    await server.close();
  });

  it('answers a JSONAdapter prompt with typed values from the field notes', async () => {
    const system = [
      'Outputs will be a JSON object with the following fields.',
      '',
      '{',
      '  "num_entities": "{num_entities}        # note: the value you produce must be a single int value",',
      '  "is_factual": "{is_factual}        # note: the value you produce must be True or False",',
      '  "entities": "{entities}        # note: the value you produce must adhere to the JSON schema: {\\"type\\": \\"array\\", \\"items\\": {\\"type\\": \\"string\\"}}"',
      '}',
      'In adhering to this structure, your objective is: ',
    ].join('\n');
    const result = await lm.complete({
      model: 'openai/gpt-4o-mini',
      messages: [
        { role: 'system', content: system },
        {
          role: 'user',
          content: 'Respond with a JSON object in the following order of fields: `num_entities`.',
        },
      ],
      kwargs: { response_format: { type: 'json_object' } },
    });
    expect(JSON.parse(result.outputs[0])).toEqual({
      num_entities: 1,
      is_factual: true,
      entities: ['Fake entities.'],
    });
  });

  it('answers a structured-outputs request with an object matching the schema', async () => {
    const schema = {
      type: 'object',
      properties: {
        answer: { type: 'string' },
        label: { type: 'string', enum: ['yes', 'no'] },
        score: { anyOf: [{ type: 'number' }, { type: 'null' }] },
      },
      required: ['answer', 'label', 'score'],
    };
    const result = await lm.complete({
      model: 'openai/gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      kwargs: { response_format: new StructuredOutputFormat('DSPyProgramOutputs', schema) },
    });
    expect(JSON.parse(result.outputs[0])).toEqual({ answer: 'Fake answer.', label: 'yes', score: 0.5 });
  });

  it('streams the default completion word by word with estimated usage', async () => {
    const messages = [
      {
        role: 'user' as const,
        content:
          'Respond with the corresponding output fields, starting with the field `[[ ## answer ## ]]`, and then ending with the marker for `[[ ## completed ## ]]`.',
      },
    ];
    const expected = (await lm.complete({ model: 'm', messages, kwargs: {} })).outputs[0];
    const chunks = await collect(lm.stream({ model: 'm', messages, kwargs: {} }));
    const texts = chunks.map((c) => c.text).filter(Boolean);
    expect(texts.length).toBeGreaterThan(2);
    expect(texts.join('')).toBe(expected);
    expect(expected).toBe('[[ ## answer ## ]]\nFake answer.\n\n[[ ## completed ## ]]');
    const usage = chunks[chunks.length - 1].usage!;
    expect(usage.completion_tokens).toBe(Math.ceil(expected.length / 4));
    expect(usage.total_tokens).toBe((usage.prompt_tokens as number) + (usage.completion_tokens as number));
  });

  it('counts requests without recording them when record is off', async () => {
    const quiet = await startFakeOpenAI({ record: false });
    try {
      const p = new OpenAIProvider({ apiKey: 'k', baseURL: quiet.url, timeoutMs: 5000, maxRetries: 0 });
      await Promise.all([p.complete(request()), p.complete(request())]);
      expect(quiet.calls).toBe(2);
      expect(quiet.requests).toEqual([]);
    } finally {
      await quiet.close();
    }
  });
});

describe('toDSPyError', () => {
  it('maps a local exception to LMUnexpectedError with the configured model (fixture lm_unknown_exception)', () => {
    const error = toDSPyError(new Error('boom'), 'openai/gpt-4o-mini');
    expect(error).toBeInstanceOf(LMUnexpectedError);
    expect(error.message).toBe('[openai/gpt-4o-mini] boom');
    expect(error.code).toBe('unexpected');
    expect(error.model).toBe('openai/gpt-4o-mini');
    expect(error.provider).toBe('openai');
    expect(error.status).toBeNull();
    expect(DSPyError.mro(error)).toEqual(['LMUnexpectedError', 'LMError', 'DSPyError', 'Exception']);
  });

  it('returns LMErrors unchanged', () => {
    const original = new LMRateLimitError('slow down', { model: 'x' });
    expect(toDSPyError(original, 'openai/gpt-4o-mini')).toBe(original);
  });

  it('applies the string rules before anything else', () => {
    expect(toDSPyError(new Error('socket timeout'), 'm')).toBeInstanceOf(LMTimeoutError);
    expect(toDSPyError(new Error('network unreachable'), 'm')).toBeInstanceOf(LMTransportError);
    expect(toDSPyError(new Error('Set the FOO_KEY environment variable'), 'm')).toBeInstanceOf(
      LMNotConfiguredError,
    );
    expect(
      toDSPyError(new OpenAIError('Missing credentials. Please pass an `apiKey`'), 'openai/m'),
    ).toBeInstanceOf(LMNotConfiguredError);
  });

  it('treats a raw socket failure like litellm does (APIConnectionError)', () => {
    const socketError = Object.assign(new Error('other side closed'), {
      name: 'SocketError',
      code: 'UND_ERR_SOCKET',
    });
    const error = toDSPyError(new TypeError('terminated', { cause: socketError }), 'openai/gpt-4o-mini');
    expect(error).toBeInstanceOf(LMTransportError);
    expect(error.model).toBe('gpt-4o-mini');
  });

  it('parses retry-after as seconds, HTTP date or retry-after-ms', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter(new Headers({ 'retry-after': '3' }), now)).toBe(3);
    expect(parseRetryAfter(new Headers({ 'retry-after': 'Wed, 01 Jan 2025 00:00:10 GMT' }), now)).toBe(10);
    expect(parseRetryAfter(new Headers({ 'retry-after-ms': '250' }), now)).toBe(0.25);
    expect(parseRetryAfter(new Headers({ 'retry-after': 'soon' }), now)).toBeNull();
    expect(parseRetryAfter(undefined, now)).toBeNull();
  });
});

describe('normalizeUsage', () => {
  it('defaults to zero counts when the provider reports nothing', () => {
    expect(normalizeUsage(undefined)).toEqual({
      completion_tokens: 0,
      prompt_tokens: 0,
      total_tokens: 0,
      completion_tokens_details: null,
      prompt_tokens_details: null,
    });
  });

  it('keeps provider values for litellm slots and extra numeric fields', () => {
    expect(
      normalizeUsage({
        prompt_tokens: 5,
        completion_tokens: 2,
        prompt_tokens_details: { cached_tokens: 1, text_tokens: 4 },
        queue_time: 0.25,
        note: 'dropped',
      }),
    ).toEqual({
      completion_tokens: 2,
      prompt_tokens: 5,
      total_tokens: 7,
      completion_tokens_details: null,
      prompt_tokens_details: { cached_tokens: 1, text_tokens: 4, image_tokens: null },
      queue_time: 0.25,
    });
  });
});

describe('toStrictJsonSchema (openai-python _ensure_strict_json_schema)', () => {
  it('closes objects, requires every property, drops null defaults and inlines refs with siblings', () => {
    const schema = {
      type: 'object',
      properties: {
        citation: { $ref: '#/$defs/Citation', description: 'Where from' },
        plain: { $ref: '#/$defs/Citation' },
        tags: { type: 'array', items: { type: 'object', properties: { k: { type: 'string' } } } },
        note: { anyOf: [{ type: 'string' }, { type: 'null' }], default: null },
        wrapped: { allOf: [{ type: 'object', properties: { x: { type: 'integer' } } }] },
      },
      required: ['citation'],
      $defs: {
        Citation: {
          type: 'object',
          title: 'Citation',
          properties: {
            source: { type: 'string' },
            page: { anyOf: [{ type: 'integer' }, { type: 'null' }], default: null },
          },
          required: ['source'],
        },
      },
    };
    const citation = {
      type: 'object',
      title: 'Citation',
      properties: { source: { type: 'string' }, page: { anyOf: [{ type: 'integer' }, { type: 'null' }] } },
      required: ['source', 'page'],
      additionalProperties: false,
    };
    const strict = toStrictJsonSchema(structuredClone(schema));
    expect(strict).toEqual({
      type: 'object',
      properties: {
        citation: { ...citation, description: 'Where from' },
        plain: { $ref: '#/$defs/Citation' },
        tags: {
          type: 'array',
          items: {
            type: 'object',
            properties: { k: { type: 'string' } },
            additionalProperties: false,
            required: ['k'],
          },
        },
        note: { anyOf: [{ type: 'string' }, { type: 'null' }] },
        wrapped: {
          type: 'object',
          properties: { x: { type: 'integer' } },
          additionalProperties: false,
          required: ['x'],
        },
      },
      required: ['citation', 'plain', 'tags', 'note', 'wrapped'],
      $defs: { Citation: citation },
      additionalProperties: false,
    });
    // Python dict.update keeps the position of keys the $ref node already had.
    expect(Object.keys(strict.properties as object)).toEqual([
      'citation',
      'plain',
      'tags',
      'note',
      'wrapped',
    ]);
    expect(Object.keys((strict.properties as any).citation)[0]).toBe('description');
  });
});
