import request from 'supertest';
import type { FakeAction, FakeRequest } from './support/fake-openai';
import { openRequest, waitFor } from './support/http';
import { chatCompletion, qaFields, questionOf, uniqueQuestion } from './support/qa';
import { createTestApp, TestApp } from './support/test-app';

const CONCURRENCY = 2;

describe('POST /batch', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ BATCH_CONCURRENCY: String(CONCURRENCY), BATCH_MAX_ITEMS: '8' });
  });
  afterAll(() => t.close());
  beforeEach(() => {
    t.upstream.reset();
    t.upstream.respondWith(null);
  });

  /** Answers each question with fields tagged by the question itself, after `latencyMs(question)`. */
  const answerByQuestion = (latencyMs: (question: string) => number = () => 0) =>
    t.upstream.respondWith((req: FakeRequest): FakeAction => {
      const question = questionOf(req.body) ?? '';
      return { text: chatCompletion(qaFields(question)), latencyMs: latencyMs(question) };
    });

  it('answers every item in input order, each with its own answer and the /predict fields', async () => {
    const questions = Array.from({ length: 5 }, (_, i) => uniqueQuestion(`Batch item ${i}`));
    // Later items answer first, so completion order is the reverse of input order.
    answerByQuestion((q) => (questions.length - questions.indexOf(q)) * 15);

    const res = await request(t.server)
      .post('/batch')
      .send(questions.map((question) => ({ question })))
      .expect(200);

    expect(res.body.count).toBe(5);
    expect(res.body.results.map((r: { question: string }) => r.question)).toEqual(questions);
    for (const [i, item] of (res.body.results as Record<string, unknown>[]).entries()) {
      expect(item).toEqual({
        question: questions[i],
        ...qaFields(questions[i]),
        usage: { 'openai/gpt-4o-mini': expect.objectContaining({ total_tokens: expect.any(Number) }) },
        saved_usage: {},
        latency_seconds: expect.any(Number),
        cached: false,
        cost_usd: expect.any(Number),
        error: null,
      });
      expect(item.cost_usd as number).toBeGreaterThan(0);
    }
    expect(t.upstream.calls).toBe(5);
  });

  it('fails items independently: each failing item carries its own code and detail', async () => {
    const ok1 = uniqueQuestion('Fine first');
    const broken = uniqueQuestion('Upstream breaks');
    const limited = uniqueQuestion('Upstream rate-limits');
    const ok2 = uniqueQuestion('Fine last');
    t.upstream.respondWith((req): FakeAction => {
      const question = questionOf(req.body);
      if (question === broken) return { type: 'error', status: 500 };
      if (question === limited) return { type: 'error', status: 429, headers: { 'retry-after': '3' } };
      return { text: chatCompletion(qaFields(question ?? '')) };
    });

    const res = await request(t.server)
      .post('/batch')
      .send([ok1, broken, limited, ok2].map((question) => ({ question })))
      .expect(200);

    expect(res.body.count).toBe(4);
    const [first, second, third, fourth] = res.body.results;
    expect(first).toMatchObject({ question: ok1, answer: qaFields(ok1).answer, error: null });
    expect(second).toEqual({
      question: broken,
      answer: null,
      error: { code: 'lm_server_error', detail: 'The language model provider failed to answer.' },
    });
    expect(third).toEqual({
      question: limited,
      answer: null,
      error: {
        code: 'lm_rate_limited',
        detail: 'The language model provider rate-limited the request; retry after 3 s.',
      },
    });
    expect(fourth).toMatchObject({ question: ok2, answer: qaFields(ok2).answer, error: null });
  });

  it(`runs at most BATCH_CONCURRENCY (${CONCURRENCY}) upstream calls at once`, async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    t.upstream.respondWith((req): FakeAction => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const recorded = t.upstream.requests.find((r) => r.index === req.index)!;
      void recorded.closed.then(() => (inFlight -= 1));
      return { text: chatCompletion(qaFields(questionOf(req.body) ?? '')), latencyMs: 40 };
    });
    const questions = Array.from({ length: 6 }, (_, i) => uniqueQuestion(`Concurrent ${i}`));

    const res = await request(t.server)
      .post('/batch')
      .send(questions.map((question) => ({ question })))
      .expect(200);

    expect(res.body.results.map((r: { error: unknown }) => r.error)).toEqual(Array(6).fill(null));
    expect(t.upstream.calls).toBe(6);
    expect(maxInFlight).toBe(CONCURRENCY);
  });

  it('aborts the in-flight upstream calls and starts no more when the client disconnects', async () => {
    t.upstream.respondWith(() => ({ type: 'hang' }));
    const questions = Array.from({ length: 5 }, (_, i) => ({ question: uniqueQuestion(`Abandoned ${i}`) }));
    const pending = openRequest(t.server, 'POST', '/batch', questions);
    await waitFor(() => t.upstream.calls === CONCURRENCY, 'the first upstream calls');

    pending.disconnect();

    await expect(Promise.all(t.upstream.requests.map((r) => r.closed))).resolves.toEqual(
      Array(CONCURRENCY).fill('aborted'),
    );
    // The remaining items are skipped; give a wrongly scheduled call a moment to show up.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(t.upstream.calls).toBe(CONCURRENCY);
  });
});
