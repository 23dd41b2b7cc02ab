import request from 'supertest';
import { openRequest, waitFor } from './support/http';
import { chatCompletion, PREDICT_FIELDS, qaFields, uniqueQuestion } from './support/qa';
import { createTestApp, TestApp } from './support/test-app';

const USAGE = { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150 };
/** USAGE as litellm-shaped usage reports it (no details objects sent → null). */
const REPORTED_USAGE = { ...USAGE, completion_tokens_details: null, prompt_tokens_details: null };

describe('POST /predict', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());
  beforeEach(() => t.upstream.reset());

  it('answers with every field of the contract, taken from the upstream completion', async () => {
    const fields = qaFields('photosynthesis');
    t.upstream.script({ text: chatCompletion(fields), usage: USAGE });

    const res = await request(t.server).post('/predict').send({ question: uniqueQuestion() }).expect(200);

    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(Object.keys(res.body).sort()).toEqual(PREDICT_FIELDS);
    expect(res.body).toEqual({
      ...fields,
      usage: { 'openai/gpt-4o-mini': REPORTED_USAGE },
      saved_usage: {},
      latency_seconds: expect.any(Number),
      cached: false,
      request_id: res.headers['x-request-id'],
      // 120 × 0.15 + 30 × 0.60 USD per million tokens
      cost_usd: 0.000036,
    });
    expect(res.body.latency_seconds).toBeGreaterThanOrEqual(0);
    expect(res.body.request_id).toEqual(expect.any(String));
  });

  it('sends the question to the configured model in a ChatAdapter prompt, without streaming', async () => {
    const question = uniqueQuestion('Why is the sky blue');
    await request(t.server).post('/predict').send({ question }).expect(200);

    expect(t.upstream.calls).toBe(1);
    const call = t.upstream.requests[0];
    expect(call.path).toBe('/v1/chat/completions');
    expect(call.headers.authorization).toBe('Bearer sk-test');
    expect(call.body.model).toBe('gpt-4o-mini');
    expect(call.body.stream).toBeUndefined();
    expect(call.body.messages.map((m: { role: string }) => m.role)).toEqual(['system', 'user']);
    expect(call.body.messages[1].content).toContain(`[[ ## question ## ]]\n${question}\n\n`);
    expect(call.body.messages[0].content).toContain('Answer a question with detailed reasoning.');
  });

  it('answers a repeated question from the cache: cached, nothing billed, no upstream call', async () => {
    const question = uniqueQuestion('What is the speed of light');
    const fields = qaFields('light');
    t.upstream.script({ text: chatCompletion(fields), usage: USAGE });

    const first = await request(t.server).post('/predict').send({ question }).expect(200);
    const second = await request(t.server).post('/predict').send({ question }).expect(200);

    expect(t.upstream.calls).toBe(1);
    expect(first.body).toMatchObject({ ...fields, cached: false, cost_usd: 0.000036 });
    expect(second.body).toMatchObject({ ...fields, cached: true, usage: {}, cost_usd: 0 });
    expect(second.body.request_id).not.toBe(first.body.request_id);
  });

  it('falls back to the JSON adapter when the first answer cannot be parsed, billing both calls', async () => {
    const fields = qaFields('fallback');
    t.upstream.script(
      { text: 'I refuse to use your format.', usage: USAGE },
      { text: JSON.stringify(fields), usage: USAGE },
    );

    const res = await request(t.server).post('/predict').send({ question: uniqueQuestion() }).expect(200);

    expect(res.body).toMatchObject({
      ...fields,
      usage: { 'openai/gpt-4o-mini': { prompt_tokens: 240, completion_tokens: 60, total_tokens: 300 } },
      cost_usd: 0.000072,
    });
    expect(t.upstream.calls).toBe(2);
    expect(t.upstream.requests[1].body.response_format).toMatchObject({
      type: 'json_schema',
      json_schema: { name: 'DSPyProgramOutputs', strict: true },
    });
  });

  it.each([
    ['1 character', 1],
    ['10000 characters', 10_000],
  ])('accepts a question of %s', async (_name, length) => {
    const question = `${uniqueQuestion()} ${'x'.repeat(10_000)}`.slice(0, length);
    const fields = qaFields(`length ${length}`);
    t.upstream.respondWith(() => ({ text: chatCompletion(fields) }));
    try {
      const res = await request(t.server).post('/predict').send({ question }).expect(200);
      expect(res.body.answer).toEqual(expect.any(String));
      // A one-letter question may have been answered (and cached) earlier in the run.
      if (!res.body.cached) {
        expect(res.body.answer).toBe(fields.answer);
        expect(t.upstream.requests[0].body.messages[1].content).toContain(question);
      }
    } finally {
      t.upstream.respondWith(null);
    }
  });

  it('accepts a JSON content type with parameters', async () => {
    const res = await request(t.server)
      .post('/predict')
      .set('Content-Type', 'application/json; charset=utf-8')
      .send(JSON.stringify({ question: uniqueQuestion() }))
      .expect(200);
    expect(res.body.answer).toBe('Fake answer.');
  });

  it('aborts the upstream call when the client disconnects', async () => {
    t.upstream.script({ type: 'hang' });
    const pending = openRequest(t.server, 'POST', '/predict', { question: uniqueQuestion() });
    await waitFor(() => t.upstream.calls === 1, 'the upstream request');

    pending.disconnect();

    await expect(t.upstream.requests[0].closed).resolves.toBe('aborted');
    expect(t.upstream.clientAborts).toBe(1);
  });

  describe('with TRACK_USAGE=false and LM_PRICES_JSON', () => {
    let custom: TestApp;
    beforeAll(async () => {
      custom = await createTestApp({
        TRACK_USAGE: 'false',
        LM_PRICES_JSON: JSON.stringify({ 'gpt-4o-mini': { input: 1, output: 2 } }),
      });
    });
    afterAll(() => custom.close());

    it('omits usage from the response but still prices the call with the configured price', async () => {
      custom.upstream.script({ text: chatCompletion(qaFields('prices')), usage: USAGE });
      const res = await request(custom.server)
        .post('/predict')
        .send({ question: uniqueQuestion() })
        .expect(200);
      // 120 × 1 + 30 × 2 USD per million tokens
      expect(res.body).toMatchObject({ usage: {}, cost_usd: 0.00018, cached: false });
    });
  });
});
