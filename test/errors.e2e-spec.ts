import request from 'supertest';
import { ProgramService } from '../src/program/program.service';
import type { FakeAction } from './support/fake-openai';
import { expectDoneLast, expectProblem, parseSse } from './support/http';
import { uniqueQuestion } from './support/qa';
import { createTestApp, TestApp } from './support/test-app';

const BODY_LIMIT_BYTES = 16_384;
const BATCH_MAX_ITEMS = 3;

describe('error responses (application/problem+json)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({
      BODY_LIMIT_BYTES: String(BODY_LIMIT_BYTES),
      BATCH_MAX_ITEMS: String(BATCH_MAX_ITEMS),
    });
  });
  afterAll(() => t.close());
  beforeEach(() => t.upstream.reset());

  describe('bad input: a clear problem and no upstream call', () => {
    afterEach(() => expect(t.upstream.calls).toBe(0));

    it.each(['/predict', '/predict/stream', '/batch'])(
      '400 for a body that is not JSON on %s',
      async (path) => {
        const res = await request(t.server)
          .post(path)
          .set('Content-Type', 'application/json')
          .send('{"question": "unterminated');
        const problem = expectProblem(res, 400, 'invalid_json');
        expect(problem.detail).toBe('The request body is not valid JSON.');
      },
    );

    it.each([
      ['text/plain', '{"question":"What is AI?"}'],
      ['application/x-www-form-urlencoded', 'question=What+is+AI%3F'],
    ])('415 for a %s body', async (contentType, body) => {
      for (const path of ['/predict', '/predict/stream', '/batch']) {
        const res = await request(t.server).post(path).set('Content-Type', contentType).send(body);
        const problem = expectProblem(res, 415, 'unsupported_media_type');
        expect(problem.detail).toBe(`Content-Type must be application/json, not "${contentType}".`);
      }
    });

    it('413 for a body over BODY_LIMIT_BYTES, stating the limit', async () => {
      for (const body of [
        { question: 'x'.repeat(BODY_LIMIT_BYTES) },
        [{ question: 'x'.repeat(BODY_LIMIT_BYTES) }],
      ]) {
        const path = Array.isArray(body) ? '/batch' : '/predict';
        const res = await request(t.server).post(path).send(body);
        const problem = expectProblem(res, 413, 'payload_too_large');
        expect(problem.detail).toBe(`The request body is larger than the ${BODY_LIMIT_BYTES}-byte limit.`);
      }
    });

    it.each<[string, unknown, string[]]>([
      ['a missing question', {}, ['question']],
      ['no body at all', undefined, ['question']],
      ['an empty question', { question: '' }, ['question']],
      ['a question of 10001 characters', { question: 'x'.repeat(10_001) }, ['question']],
      ['a numeric question', { question: 42 }, ['question']],
      ['a null question', { question: null }, ['question']],
      ['an array question', { question: ['What is AI?'] }, ['question']],
      ['an object question', { question: { text: 'What is AI?' } }, ['question']],
      ['an unknown field', { question: 'What is AI?', temperature: 2 }, ['temperature']],
    ])('422 for %s, listing the offending field', async (_name, body, fields) => {
      const req = request(t.server).post('/predict');
      const res = await (body === undefined ? req : req.send(body as object));
      const problem = expectProblem(res, 422, 'validation_failed');
      expect(problem.errors!.length).toBeGreaterThan(0);
      expect([...new Set(problem.errors!.map((e) => e.field))]).toEqual(fields);
      expect(problem.detail).toBe(problem.errors!.map((e) => e.message).join('; '));
    });

    it('422 names each constraint a too-long question breaks', async () => {
      const res = await request(t.server)
        .post('/predict')
        .send({ question: 'x'.repeat(10_001) });
      expect(expectProblem(res, 422, 'validation_failed').errors).toEqual([
        {
          field: 'question',
          message: 'question must be shorter than or equal to 10000 characters',
        },
      ]);
    });

    it('422 rejects an unknown field by name', async () => {
      const res = await request(t.server)
        .post('/predict')
        .send({ question: 'What is AI?', questoin: 'typo' });
      expect(expectProblem(res, 422, 'validation_failed').errors).toEqual([
        { field: 'questoin', message: 'property questoin should not exist' },
      ]);
    });

    it.each<[string, unknown, string, { field: string; message: string }[] | undefined]>([
      [
        'an object instead of an array',
        { question: 'What is AI?' },
        'validation_failed',
        [{ field: '', message: 'the body must be a JSON array of {"question": string}' }],
      ],
      ['an empty array', [], 'validation_failed', [{ field: '', message: 'the batch must not be empty' }]],
      [
        `more than BATCH_MAX_ITEMS (${BATCH_MAX_ITEMS}) items`,
        Array.from({ length: BATCH_MAX_ITEMS + 1 }, (_, i) => ({ question: `Q${i}?` })),
        'batch_too_large',
        undefined,
      ],
      [
        'invalid items',
        [{ question: '' }, 'not an object', { question: 'ok?', extra: true }],
        'validation_failed',
        [
          { field: '[0].question', message: 'question must be longer than or equal to 1 characters' },
          { field: '[1]', message: '[1] must be an object {"question": string}' },
          { field: '[2].extra', message: 'property extra should not exist' },
        ],
      ],
    ])('422 for a batch that is %s', async (_name, body, code, errors) => {
      const res = await request(t.server)
        .post('/batch')
        .send(body as object);
      const problem = expectProblem(res, 422, code);
      if (errors) expect(problem.errors).toEqual(errors);
      else expect(problem.detail).toBe(`A batch holds at most ${BATCH_MAX_ITEMS} questions.`);
    });

    it('404 problem+json for an unknown route', async () => {
      const res = await request(t.server).get('/nope');
      expect(expectProblem(res, 404, 'not_found').detail).toBe('Cannot GET /nope');
    });
  });

  describe('upstream failures', () => {
    const predict = () => request(t.server).post('/predict').send({ question: uniqueQuestion() });

    it.each<[string, Record<string, string>, string]>([
      ['Retry-After in seconds', { 'retry-after': '7' }, '7'],
      ['retry-after-ms, rounded up to whole seconds', { 'retry-after-ms': '1500' }, '2'],
      ['no retry hint, as a 1 s default', {}, '1'],
    ])('429 when the upstream rate-limits us, passing %s on', async (_name, headers, retryAfter) => {
      t.upstream.script({ type: 'error', status: 429, headers });
      const res = await predict();
      const problem = expectProblem(res, 429, 'lm_rate_limited');
      expect(res.headers['retry-after']).toBe(retryAfter);
      expect(problem.detail).toBe(
        `The language model provider rate-limited the request; retry after ${retryAfter} s.`,
      );
      expect(t.upstream.calls).toBe(1);
    });

    it.each<[string, FakeAction, string, string]>([
      [
        'the upstream answers 500',
        { type: 'error', status: 500, message: 'Internal failure at shard sk-upstream-secret' },
        'lm_server_error',
        'The language model provider failed to answer.',
      ],
      [
        'the upstream rejects our API key (401)',
        { type: 'error', status: 401, message: 'Incorrect API key provided: sk-test. sk-upstream-secret' },
        'lm_auth_failed',
        "The language model provider rejected the service's credentials.",
      ],
      [
        'the upstream drops the connection',
        { type: 'reset' },
        'lm_unreachable',
        'The language model provider could not be reached.',
      ],
      [
        'the upstream answers 200 with a body that is not a chat completion',
        { type: 'error', status: 200, body: { object: 'chat.completion', choices: [null] } },
        'lm_unexpected_response',
        'The language model provider returned an unexpected response.',
      ],
    ])('502 when %s, after one upstream call', async (_name, action, code, detail) => {
      t.upstream.script(action);
      const res = await predict();
      expect(expectProblem(res, 502, code).detail).toBe(detail);
      expect(res.text).not.toContain('sk-upstream-secret');
      expect(res.text).not.toContain('sk-test');
      expect(res.headers['retry-after']).toBeUndefined();
      expect(t.upstream.calls).toBe(1);
    });

    it('502 when the output cannot be parsed after the adapter fallbacks (3 upstream calls)', async () => {
      t.upstream.script(
        'Sure! The answer is 42 (sk-upstream-secret).',
        'Still no fields here (sk-upstream-secret).',
        'Nor here (sk-upstream-secret).',
      );
      const res = await predict();
      const problem = expectProblem(res, 502, 'lm_output_unparseable');
      expect(problem.detail).toBe(
        "The language model's answer could not be parsed into the expected fields.",
      );
      // The raw model output stays out of the response.
      expect(res.text).not.toContain('sk-upstream-secret');
      expect(t.upstream.calls).toBe(3);
      const formats = t.upstream.requests.map((r) => r.body.response_format?.type);
      expect(formats).toEqual([undefined, 'json_schema', 'json_object']);
    });

    it('422 when the question does not fit the context window (400 context_length_exceeded upstream)', async () => {
      t.upstream.script({
        type: 'error',
        status: 400,
        code: 'context_length_exceeded',
        message:
          "This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 tokens.",
      });
      const res = await predict();
      const problem = expectProblem(res, 422, 'context_window_exceeded');
      expect(problem.detail).toBe("The question does not fit the model's context window; shorten it.");
      expect(res.text).not.toContain('130512');
      expect(t.upstream.calls).toBe(1);
    });
  });

  describe('an unexpected failure', () => {
    let defaults: TestApp;
    beforeAll(async () => {
      defaults = await createTestApp();
    });
    afterAll(() => defaults.close());

    it('422, not a stack overflow, for a body nested deeper than any valid one', async () => {
      const deep = `${'['.repeat(50_000)}${']'.repeat(50_000)}`;
      const res = await request(defaults.server)
        .post('/predict')
        .set('Content-Type', 'application/json')
        .send(`{"question": "What is AI?", "nested": ${deep}}`);
      expectProblem(res, 422, 'validation_failed');
      expect(defaults.upstream.calls).toBe(0);
    });

    it('500 with a generic detail, and nothing of the error itself, for an unexpected failure', async () => {
      // A bug no table row knows (no request can cause one any more, so the service is made to throw).
      jest
        .spyOn(defaults.app.get(ProgramService), 'predict')
        .mockRejectedValueOnce(new RangeError('Maximum call stack size exceeded in secret internals'));
      const res = await request(defaults.server).post('/predict').send({ question: 'What is AI?' });
      const problem = expectProblem(res, 500, 'internal_error');
      expect(problem).toEqual({
        type: 'https://errors.dspy-nest-api.dev/internal_error',
        title: 'Internal Server Error',
        status: 500,
        detail: 'Internal server error',
        code: 'internal_error',
        request_id: res.headers['x-request-id'],
      });
      expect(res.text).not.toMatch(/RangeError|call stack|secret internals/i);
      expect(defaults.upstream.calls).toBe(0);
    });
  });

  describe('with a short LM_TIMEOUT_MS', () => {
    let slow: TestApp;
    beforeAll(async () => {
      slow = await createTestApp({ LM_TIMEOUT_MS: '250' });
    });
    afterAll(() => slow.close());
    beforeEach(() => slow.upstream.reset());

    it('504 when the upstream does not answer in time, and the upstream request is closed', async () => {
      slow.upstream.script({ type: 'hang' });
      const res = await request(slow.server).post('/predict').send({ question: uniqueQuestion() });
      const problem = expectProblem(res, 504, 'lm_timeout');
      expect(problem.detail).toBe('The language model provider did not answer in time.');
      await expect(slow.upstream.requests[0].closed).resolves.toBe('aborted');
      expect(slow.upstream.calls).toBe(1);
    });

    it('a 504 problem when a stream goes silent before its first event', async () => {
      slow.upstream.script({ hangAfterChunks: 3 });
      const res = await request(slow.server).post('/predict/stream').send({ question: uniqueQuestion() });
      expectProblem(res, 504, 'lm_timeout');
      await expect(slow.upstream.requests[0].closed).resolves.toBe('aborted');
    });

    it('an lm_timeout error event when a stream goes silent after it began', async () => {
      slow.upstream.script({
        chunks: ['[[ ## reasoning ## ]]\nR\n\n[[ ## answer ## ]]\n', 'Partial ', 'answer '],
        hangAfterChunks: 3,
      });
      const res = await request(slow.server).post('/predict/stream').send({ question: uniqueQuestion() });
      expect(res.status).toBe(200);
      const sse = parseSse(res.text);
      expectDoneLast(sse);
      expect(sse.events[0]).toMatchObject({ type: 'token', field: 'answer' });
      expect(sse.events.at(-1)).toEqual({
        type: 'error',
        code: 'lm_timeout',
        retryable: true,
        detail: 'The language model provider did not answer in time.',
        status: 504,
      });
      await expect(slow.upstream.requests[0].closed).resolves.toBe('aborted');
    });
  });

  describe('with no LM configured (OPENAI_API_KEY and OPENAI_BASE_URL unset)', () => {
    let bare: TestApp;
    beforeAll(async () => {
      bare = await createTestApp({ OPENAI_API_KEY: undefined, OPENAI_BASE_URL: undefined });
    });
    afterAll(() => bare.close());

    it.each<[string, object]>([
      ['/predict', { question: 'What is AI?' }],
      ['/batch', [{ question: 'What is AI?' }]],
    ])('503 on %s, naming the variables to set', async (path, body) => {
      const res = await request(bare.server).post(path).send(body);
      const problem = expectProblem(res, 503, 'lm_not_configured');
      expect(problem.detail).toContain('OPENAI_API_KEY');
      expect(problem.detail).toContain('OPENAI_BASE_URL');
      expect(bare.upstream.calls).toBe(0);
    });

    it('still validates the body first', async () => {
      const res = await request(bare.server).post('/predict').send({ question: '' });
      expectProblem(res, 422, 'validation_failed');
    });
  });
});
