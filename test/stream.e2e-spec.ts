import request from 'supertest';
import type { FakeResponder } from './support/fake-openai';
import {
  eventually,
  expectDoneLast,
  expectNoStackTrace,
  expectProblem,
  openRequest,
  parseSse,
  readUntil,
  tokensOf,
} from './support/http';
import {
  chatCompletion,
  PARTIAL_ANSWER_CHUNKS,
  PREDICT_FIELDS,
  qaFields,
  questionOf,
  uniqueQuestion,
} from './support/qa';
import { createTestApp, TestApp } from './support/test-app';

const USAGE = { prompt_tokens: 200, completion_tokens: 50, total_tokens: 250 };

/** Collects a whole SSE response as text (supertest would otherwise try to buffer it as binary). */
function sseText(req: request.Test): request.Test {
  return req.buffer(true).parse((res, done) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => (text += chunk));
    res.on('end', () => done(null, text));
  });
}

describe('/predict/stream', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ STREAM_HEARTBEAT_MS: '1000' });
  });
  afterAll(() => t.close());
  beforeEach(() => {
    t.upstream.reset();
    t.upstream.respondWith(null);
  });

  it('streams answer tokens, then a complete event with every /predict field, then [DONE]', async () => {
    const fields = qaFields('tides');
    t.upstream.script({ text: chatCompletion(fields), usage: USAGE });

    const res = await sseText(request(t.server).post('/predict/stream').send({ question: uniqueQuestion() }));

    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(res.headers['cache-control']).toContain('no-cache');
    const sse = parseSse(res.body as string);
    expectDoneLast(sse);
    const tokens = tokensOf(sse, 'answer');
    expect(tokens.length).toBeGreaterThan(1);
    expect(tokens.join('').trim()).toBe(fields.answer);
    expect(sse.events.filter((e) => e.type === 'token').every((e) => e.field === 'answer')).toBe(true);

    const complete = sse.events.at(-1)!;
    expect(sse.events.filter((e) => e.type === 'complete')).toHaveLength(1);
    const { type, ...result } = complete;
    expect(type).toBe('complete');
    expect(Object.keys(result).sort()).toEqual(PREDICT_FIELDS);
    expect(result).toEqual({
      ...fields,
      usage: { 'openai/gpt-4o-mini': expect.objectContaining(USAGE) },
      saved_usage: {},
      latency_seconds: expect.any(Number),
      cached: false,
      request_id: res.headers['x-request-id'],
      // 200 × 0.15 + 50 × 0.60 USD per million tokens
      cost_usd: 0.00006,
    });

    const call = t.upstream.requests[0].body;
    expect(call.stream).toBe(true);
    expect(call.stream_options).toEqual({ include_usage: true });
  });

  it('serves GET /predict/stream?question=… for EventSource clients', async () => {
    const question = uniqueQuestion('How do rainbows form');
    const fields = qaFields('rainbows');
    t.upstream.script({ text: chatCompletion(fields) });

    const res = await sseText(request(t.server).get('/predict/stream').query({ question }));

    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    const sse = parseSse(res.body as string);
    expectDoneLast(sse);
    expect(tokensOf(sse, 'answer').join('').trim()).toBe(fields.answer);
    expect(sse.events.at(-1)).toMatchObject({ type: 'complete', ...fields });
    expect(questionOf(t.upstream.requests[0].body)).toBe(question);
  });

  it('streams the JSON adapter fallback too, and completes with its parsed fields', async () => {
    const fields = qaFields('json streaming');
    t.upstream.script('no sections at all', { text: JSON.stringify(fields) });

    const res = await sseText(request(t.server).post('/predict/stream').send({ question: uniqueQuestion() }));

    const sse = parseSse(res.body as string);
    expectDoneLast(sse);
    // DSPy's JSON listener streams raw JSON text (quotes and the next key leak in); the pinned shape is the
    // streaming/json_answer_listener fixture. The client reads the clean value from `complete`.
    expect(tokensOf(sse, 'answer').join('')).toContain(fields.answer);
    expect(sse.events.at(-1)).toMatchObject({ type: 'complete', ...fields });
    expect(t.upstream.calls).toBe(2);
  });

  it('reports an upstream failure after the stream began as an error event, then [DONE]', async () => {
    t.upstream.script({ chunks: PARTIAL_ANSWER_CHUNKS, resetAfterChunks: PARTIAL_ANSWER_CHUNKS.length });

    const res = await sseText(request(t.server).post('/predict/stream').send({ question: uniqueQuestion() }));

    expect(res.status).toBe(200);
    const sse = parseSse(res.body as string);
    expectDoneLast(sse);
    // What the listener released before the reset: a prefix of the answer being written.
    const streamed = tokensOf(sse, 'answer').join('');
    expect(streamed.length).toBeGreaterThan(0);
    expect('The answer is cut short '.startsWith(streamed)).toBe(true);
    expect(sse.events.some((e) => e.type === 'complete')).toBe(false);
    const last = sse.events.at(-1)!;
    expect(last).toMatchObject({
      type: 'error',
      code: 'lm_unreachable',
      detail: 'The language model provider could not be reached.',
    });
    expect(sse.events.filter((e) => e.type === 'error')).toHaveLength(1);
    expectNoStackTrace(res.body as string);
    await expect(t.upstream.requests[0].closed).resolves.toBe('reset');
    // An LM failure is not a parse failure: no adapter fallback call.
    expect(t.upstream.calls).toBe(1);
  });

  it('answers an upstream rate limit that comes before the first event with a 429 problem and Retry-After', async () => {
    t.upstream.script({ type: 'error', status: 429, headers: { 'retry-after': '4' } });

    const res = await request(t.server).post('/predict/stream').send({ question: uniqueQuestion() });

    const problem = expectProblem(res, 429, 'lm_rate_limited');
    expect(problem.detail).toBe('The language model provider rate-limited the request; retry after 4 s.');
    expect(res.headers['retry-after']).toBe('4');
  });

  it('answers a request that fails validation with problem+json before any stream starts', async () => {
    const post = await request(t.server).post('/predict/stream').send({ question: '' });
    expectProblem(post, 422, 'validation_failed');
    const get = await request(t.server).get('/predict/stream');
    expect(expectProblem(get, 422, 'validation_failed').errors).toEqual(
      expect.arrayContaining([expect.objectContaining({ field: 'question' })]),
    );
    const extra = await request(t.server).get('/predict/stream').query({ question: 'q', verbose: '1' });
    expect(expectProblem(extra, 422, 'validation_failed').errors).toEqual([
      { field: 'verbose', message: 'property verbose should not exist' },
    ]);
    expect(t.upstream.calls).toBe(0);
  });

  it('sends keep-alive comments while the upstream is slow', async () => {
    const fields = qaFields('heartbeat');
    // About 1.5 s of streaming against a 1 s heartbeat.
    t.upstream.script({
      text: chatCompletion(fields),
      chunks: splitInto(chatCompletion(fields), 6),
      chunkDelayMs: 250,
    });

    const res = await sseText(request(t.server).post('/predict/stream').send({ question: uniqueQuestion() }));

    const raw = res.body as string;
    const sse = parseSse(raw);
    expect(sse.comments).toContain('keep-alive');
    expect(raw).toMatch(/(^|\n\n): keep-alive\n\n/);
    expectDoneLast(sse);
    expect(sse.events.at(-1)).toMatchObject({ type: 'complete', answer: fields.answer });
  });

  it('aborts the upstream call when the client disconnects mid-stream', async () => {
    t.upstream.script({
      chunks: [...PARTIAL_ANSWER_CHUNKS, 'never ', 'sent'],
      hangAfterChunks: PARTIAL_ANSWER_CHUNKS.length,
    });
    const pending = openRequest(t.server, 'POST', '/predict/stream', { question: uniqueQuestion() });
    const res = await pending.response;
    expect(res.statusCode).toBe(200);
    await readUntil(res, (text) => text.includes('"type":"token"'));

    pending.disconnect();

    await expect(t.upstream.requests[0].closed).resolves.toBe('aborted');
    // The stream's bookkeeping is released too, and no adapter fallback call follows the abort.
    const openStreams = await eventually(
      async () => (await request(t.server).get('/metrics').expect(200)).body.open_streams as number,
      (n) => n === 0,
    );
    expect(openStreams).toBe(0);
    expect(t.upstream.calls).toBe(1);
  });

  it('keeps the listener state of two concurrent streams apart', async () => {
    const one = { question: uniqueQuestion('First stream'), fields: qaFields('first stream') };
    const two = { question: uniqueQuestion('Second stream'), fields: qaFields('second stream') };
    // Both upstream calls are held until both have arrived, then stream interleaved.
    let arrived = 0;
    let release!: () => void;
    const bothArrived = new Promise<void>((resolve) => (release = resolve));
    const responder: FakeResponder = async (req) => {
      arrived += 1;
      if (arrived === 2) release();
      await bothArrived;
      const mine = questionOf(req.body) === one.question ? one : two;
      return { text: chatCompletion(mine.fields), chunkDelayMs: 3 };
    };
    t.upstream.script(responder, responder);

    const [a, b] = await Promise.all(
      [one, two].map((s) =>
        sseText(request(t.server).post('/predict/stream').send({ question: s.question })),
      ),
    );

    for (const [res, s] of [
      [a, one],
      [b, two],
    ] as const) {
      const sse = parseSse(res.body as string);
      expectDoneLast(sse);
      expect(tokensOf(sse, 'answer').join('').trim()).toBe(s.fields.answer);
      expect(sse.events.at(-1)).toMatchObject({ type: 'complete', ...s.fields });
    }
    expect(t.upstream.calls).toBe(2);
  });

  describe('with STREAM_FIELDS=answer,reasoning', () => {
    let multi: TestApp;
    beforeAll(async () => {
      multi = await createTestApp({ STREAM_FIELDS: 'answer,reasoning' });
    });
    afterAll(() => multi.close());

    it('streams tokens for both fields, in the order the model writes them', async () => {
      const fields = qaFields('two fields');
      multi.upstream.script({ text: chatCompletion(fields) });

      const res = await sseText(
        request(multi.server).post('/predict/stream').send({ question: uniqueQuestion() }),
      );

      const sse = parseSse(res.body as string);
      expectDoneLast(sse);
      expect(tokensOf(sse, 'reasoning').join('').trim()).toBe(fields.reasoning);
      expect(tokensOf(sse, 'answer').join('').trim()).toBe(fields.answer);
      const order = sse.events.filter((e) => e.type === 'token').map((e) => e.field as string);
      expect(order.lastIndexOf('reasoning')).toBeLessThan(order.indexOf('answer'));
      expect(new Set(order)).toEqual(new Set(['reasoning', 'answer']));
    });
  });

  describe('with ENABLE_STREAMING=false', () => {
    let off: TestApp;
    beforeAll(async () => {
      off = await createTestApp({ ENABLE_STREAMING: 'false' });
    });
    afterAll(() => off.close());

    it('answers 404 problem+json on both routes without calling the upstream', async () => {
      const post = await request(off.server).post('/predict/stream').send({ question: uniqueQuestion() });
      expect(expectProblem(post, 404, 'streaming_disabled').detail).toBe('Streaming not enabled');
      const get = await request(off.server).get('/predict/stream').query({ question: uniqueQuestion() });
      expect(expectProblem(get, 404, 'streaming_disabled').detail).toBe('Streaming not enabled');
      expect(off.upstream.calls).toBe(0);
    });

    it('still serves /predict', async () => {
      const res = await request(off.server).post('/predict').send({ question: uniqueQuestion() }).expect(200);
      expect(res.body.answer).toBe('Fake answer.');
    });
  });

  describe('with no LM configured', () => {
    let bare: TestApp;
    beforeAll(async () => {
      bare = await createTestApp({ OPENAI_API_KEY: undefined, OPENAI_BASE_URL: undefined });
    });
    afterAll(() => bare.close());

    it('answers 503 problem+json before the stream starts, naming the variables to set', async () => {
      for (const res of [
        await request(bare.server).post('/predict/stream').send({ question: uniqueQuestion() }),
        await request(bare.server).get('/predict/stream').query({ question: uniqueQuestion() }),
      ]) {
        expect(res.headers['content-type']).not.toMatch(/event-stream/);
        const problem = expectProblem(res, 503, 'lm_not_configured');
        expect(problem.detail).toContain('OPENAI_API_KEY');
        expect(problem.detail).toContain('OPENAI_BASE_URL');
      }
      expect(bare.upstream.calls).toBe(0);
    });
  });
});

/** `text` cut into `n` pieces of about equal length. */
function splitInto(text: string, n: number): string[] {
  const size = Math.ceil(text.length / n);
  return Array.from({ length: n }, (_, i) => text.slice(i * size, (i + 1) * size)).filter(Boolean);
}
