import request from 'supertest';
import { expectProblem, parseSse } from './support/http';
import { chatCompletion, PREDICT_FIELDS, qaFields, uniqueQuestion } from './support/qa';
import { createTestApp, TestApp } from './support/test-app';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const USAGE = { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 };

/** The seed's `sorted[int(n * q)]`, clamped to the last element. */
function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(Math.floor(sorted.length * q), sorted.length - 1)];
}

/** The value of one sample line of a Prometheus exposition, or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('observability', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());
  beforeEach(() => t.upstream.reset());

  describe('health', () => {
    it("GET /health reports the seed's fields, version, uptime and the LM dependency", async () => {
      const res = await request(t.server).get('/health').expect(200);
      expect(res.body).toEqual({
        status: 'healthy',
        model: 'openai/gpt-4o-mini',
        optimized: false,
        streaming: true,
        version: '0.1.0',
        uptime_seconds: expect.any(Number),
        // More dependencies (the cache tiers) join `lm` as they are wired in.
        dependencies: expect.objectContaining({
          lm: { status: 'up', model: 'openai/gpt-4o-mini', configured: true },
        }),
      });
      expect(res.body.uptime_seconds).toBeGreaterThanOrEqual(0);
      for (const dependency of Object.values(res.body.dependencies as Record<string, { status: string }>)) {
        expect(dependency.status).toBe('up');
      }
    });

    it('GET /health/live answers from the process alone', async () => {
      const res = await request(t.server).get('/health/live').expect(200);
      expect(res.body).toEqual({ status: 'ok', info: {}, error: {}, details: {} });
    });

    it('GET /health/ready is up once the app has started', async () => {
      const res = await request(t.server).get('/health/ready').expect(200);
      expect(res.body).toEqual({
        status: 'ok',
        info: { readiness: { status: 'up', state: 'ready' } },
        error: {},
        details: { readiness: { status: 'up', state: 'ready' } },
      });
    });

    it('no probe calls the upstream LM', async () => {
      for (const path of ['/health', '/health/live', '/health/ready']) {
        await request(t.server).get(path).expect(200);
      }
      expect(t.upstream.calls).toBe(0);
    });
  });

  describe('request ids', () => {
    it('honours a well-formed incoming x-request-id, on successes and on problems', async () => {
      const id = 'client-req.42:abc_Z';
      const ok = await request(t.server)
        .post('/predict')
        .set('x-request-id', id)
        .send({ question: uniqueQuestion() })
        .expect(200);
      expect(ok.headers['x-request-id']).toBe(id);
      expect(ok.body.request_id).toBe(id);

      const invalid = await request(t.server).post('/predict').set('x-request-id', id).send({ question: '' });
      expect(expectProblem(invalid, 422, 'validation_failed').request_id).toBe(id);

      // Rejected by the body parser, before the request logger has run.
      const notJson = await request(t.server)
        .post('/predict')
        .set('x-request-id', id)
        .set('Content-Type', 'application/json')
        .send('{oops');
      expect(expectProblem(notJson, 400, 'invalid_json').request_id).toBe(id);
    });

    it.each([
      ['contains spaces', 'two words'],
      ['is longer than 128 characters', 'a'.repeat(129)],
      ['contains characters outside the allowed set', 'id;rm -rf'],
    ])('replaces an incoming id that %s with a fresh UUID', async (_name, id) => {
      const res = await request(t.server)
        .post('/predict')
        .set('x-request-id', id)
        .send({ question: uniqueQuestion() })
        .expect(200);
      expect(res.headers['x-request-id']).toMatch(UUID);
      expect(res.body.request_id).toBe(res.headers['x-request-id']);
    });

    it('gives every response an id, distinct per request', async () => {
      const ids: string[] = [];
      for (const path of ['/health', '/health/live', '/metrics', '/nope']) {
        const res = await request(t.server).get(path);
        ids.push(res.headers['x-request-id']);
      }
      expect(ids.every((id) => UUID.test(id))).toBe(true);
      expect(new Set(ids).size).toBe(ids.length);
    });
  });

  describe('cost', () => {
    it('prices gpt-4o-mini usage at the list price', async () => {
      t.upstream.script({
        text: chatCompletion(qaFields('cost')),
        usage: { prompt_tokens: 1000, completion_tokens: 500, total_tokens: 1500 },
      });
      const res = await request(t.server).post('/predict').send({ question: uniqueQuestion() }).expect(200);
      // 1000 × 0.15 + 500 × 0.60 USD per million tokens
      expect(res.body.cost_usd).toBe(0.00045);
    });
  });

  describe('metrics', () => {
    let m: TestApp;
    const latencies: number[] = [];
    beforeAll(async () => {
      m = await createTestApp();
      const repeated = uniqueQuestion('Asked twice');
      // Three billed predictions with distinct latencies, one cache hit, one upstream failure, one stream.
      for (const [i, latencyMs] of [20, 40, 200].entries()) {
        m.upstream.script({ text: chatCompletion(qaFields(`metrics ${i}`)), usage: USAGE, latencyMs });
        const question = i === 0 ? repeated : uniqueQuestion();
        const res = await request(m.server).post('/predict').send({ question }).expect(200);
        latencies.push(res.body.latency_seconds as number);
      }
      const cached = await request(m.server).post('/predict').send({ question: repeated }).expect(200);
      expect(cached.body.cached).toBe(true);
      latencies.push(cached.body.latency_seconds as number);
      m.upstream.script({ type: 'error', status: 500 });
      await request(m.server).post('/predict').send({ question: uniqueQuestion() }).expect(502);
      m.upstream.script({ text: chatCompletion(qaFields('metrics stream')), usage: USAGE });
      const stream = await request(m.server)
        .post('/predict/stream')
        .send({ question: uniqueQuestion() })
        .expect(200);
      const complete = parseSse(stream.text).events.find((e) => e.type === 'complete')!;
      latencies.push(complete.latency_seconds as number);
    });
    afterAll(() => m.close());

    it("GET /metrics keeps the seed's fields and adds quantiles, tokens by model, cost and cache", async () => {
      const res = await request(m.server).get('/metrics').expect(200);
      const body = res.body as Record<string, number>;
      expect(Object.keys(body)).toEqual(
        expect.arrayContaining([
          // the seed's
          'uptime_seconds',
          'total_requests',
          'total_errors',
          'error_rate',
          'avg_latency_seconds',
          'p95_latency_seconds',
          'total_tokens',
          'requests_per_second',
          // added
          'p50_latency_seconds',
          'p99_latency_seconds',
          'tokens_by_model',
          'total_cost_usd',
          'cache_hits',
          'cache_hit_rate',
          'open_streams',
        ]),
      );
      expect(body).toMatchObject({
        total_requests: 6,
        total_errors: 1,
        error_rate: 0.1667,
        // 4 billed calls (3 predictions and the stream) of 100 + 20 tokens
        total_tokens: 480,
        tokens_by_model: {
          'openai/gpt-4o-mini': { prompt_tokens: 400, completion_tokens: 80, total_tokens: 480 },
        },
        // 4 × (100 × 0.15 + 20 × 0.60) / 1e6
        total_cost_usd: 0.000108,
        cache_hits: 1,
        cache_hit_rate: 0.2,
        open_streams: 0,
      });
      expect(body.uptime_seconds).toBeGreaterThanOrEqual(0);
      expect(body.requests_per_second).toBeGreaterThan(0);
      // Quantiles by the seed's rule over the five successful predictions (the failure has no latency).
      expect(latencies).toHaveLength(5);
      expect(body.p50_latency_seconds).toBeCloseTo(quantile(latencies, 0.5), 6);
      expect(body.p95_latency_seconds).toBeCloseTo(quantile(latencies, 0.95), 6);
      expect(body.p99_latency_seconds).toBeCloseTo(quantile(latencies, 0.99), 6);
      expect(body.p99_latency_seconds).toBeGreaterThanOrEqual(0.2);
      expect(body.avg_latency_seconds).toBeCloseTo(
        latencies.reduce((a, b) => a + b, 0) / latencies.length,
        3,
      );
    });

    it('GET /metrics/prometheus exposes HTTP, prediction, LM and process metrics as text', async () => {
      const res = await request(m.server).get('/metrics/prometheus').expect(200);
      // Text format 0.0.4 (Express reorders the parameters; their order carries no meaning).
      expect(res.headers['content-type']).toMatch(/^text\/plain;/);
      expect(res.headers['content-type']).toContain('version=0.0.4');
      const text = res.text;
      for (const [name, type] of [
        ['http_request_duration_seconds', 'histogram'],
        ['predictions_total', 'counter'],
        ['prediction_duration_seconds', 'histogram'],
        ['prediction_errors_total', 'counter'],
        ['lm_requests_total', 'counter'],
        ['lm_request_duration_seconds', 'histogram'],
        ['lm_tokens_total', 'counter'],
        ['lm_errors_total', 'counter'],
        ['lm_cost_usd_total', 'counter'],
        ['open_streams', 'gauge'],
        ['process_cpu_user_seconds_total', 'counter'],
        ['nodejs_eventloop_lag_seconds', 'gauge'],
      ]) {
        expect(text).toContain(`# TYPE ${name} ${type}\n`);
      }
      const predict = 'method="POST",route="/predict"';
      expect(sample(text, `http_request_duration_seconds_count{${predict},status="200"}`)).toBe(4);
      expect(sample(text, `http_request_duration_seconds_count{${predict},status="502"}`)).toBe(1);
      expect(
        sample(
          text,
          'http_request_duration_seconds_count{method="POST",route="/predict/stream",status="200"}',
        ),
      ).toBe(1);
      expect(sample(text, 'predictions_total{route="predict",cached="false"}')).toBe(3);
      expect(sample(text, 'predictions_total{route="predict",cached="true"}')).toBe(1);
      expect(sample(text, 'predictions_total{route="stream",cached="false"}')).toBe(1);
      expect(sample(text, 'prediction_errors_total{route="predict",code="lm_server_error"}')).toBe(1);
      expect(sample(text, 'lm_errors_total{model="openai/gpt-4o-mini",code="lm_server_error"}')).toBe(1);
      expect(sample(text, 'lm_tokens_total{model="openai/gpt-4o-mini",kind="prompt"}')).toBe(400);
      expect(sample(text, 'lm_tokens_total{model="openai/gpt-4o-mini",kind="completion"}')).toBe(80);
      expect(sample(text, 'lm_cost_usd_total{model="openai/gpt-4o-mini"}')).toBeCloseTo(0.000108, 9);
      expect(sample(text, 'open_streams')).toBe(0);
      // Scrapes and probes are not measured as traffic.
      expect(text).not.toMatch(/route="\/(metrics|health)/);
    });
  });

  describe('with an unknown model price', () => {
    let unpriced: TestApp;
    beforeAll(async () => {
      unpriced = await createTestApp({ DSPY_MODEL: 'openai/acme-llm-1' });
    });
    afterAll(() => unpriced.close());

    it('answers cost_usd null and counts the tokens under that model', async () => {
      unpriced.upstream.script({ text: chatCompletion(qaFields('unpriced')), usage: USAGE });
      const res = await request(unpriced.server)
        .post('/predict')
        .send({ question: uniqueQuestion() })
        .expect(200);
      expect(res.body.cost_usd).toBeNull();
      expect(Object.keys(res.body.usage)).toEqual(['openai/acme-llm-1']);
      expect(unpriced.upstream.requests[0].body.model).toBe('acme-llm-1');

      const metrics = (await request(unpriced.server).get('/metrics').expect(200)).body;
      expect(metrics.total_cost_usd).toBe(0);
      expect(metrics.tokens_by_model).toEqual({
        'openai/acme-llm-1': { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 },
      });
      const health = (await request(unpriced.server).get('/health').expect(200)).body;
      expect(health.model).toBe('openai/acme-llm-1');
    });
  });

  describe('with no LM, ENABLE_METRICS=false and ENABLE_STREAMING=false', () => {
    let off: TestApp;
    beforeAll(async () => {
      off = await createTestApp({
        OPENAI_API_KEY: undefined,
        OPENAI_BASE_URL: undefined,
        ENABLE_METRICS: 'false',
        ENABLE_STREAMING: 'false',
      });
    });
    afterAll(() => off.close());

    it('GET /health is degraded, says the LM is not configured and which variables to set', async () => {
      const res = await request(off.server).get('/health').expect(200);
      expect(res.body).toMatchObject({
        status: 'degraded',
        model: 'openai/gpt-4o-mini',
        streaming: false,
        dependencies: expect.objectContaining({
          lm: { status: 'down', model: 'openai/gpt-4o-mini', configured: false, problem: expect.any(String) },
        }),
      });
      expect(res.body.dependencies.lm.problem).toContain('OPENAI_API_KEY');
    });

    it('liveness and readiness do not depend on the LM', async () => {
      await request(off.server).get('/health/live').expect(200);
      await request(off.server).get('/health/ready').expect(200);
    });

    it.each(['/metrics', '/metrics/prometheus'])('GET %s answers 404 problem+json', async (path) => {
      const res = await request(off.server).get(path);
      expect(expectProblem(res, 404, 'not_found').detail).toBe('Metrics are disabled');
    });
  });

  describe('API docs', () => {
    it('GET /docs serves Swagger UI', async () => {
      const res = await request(t.server).get('/docs').expect(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.text).toContain('Swagger UI');
    });

    it('GET /docs-json documents the prediction routes with their schemas and error responses', async () => {
      const doc = (await request(t.server).get('/docs-json').expect(200)).body;
      const problem = { 'application/problem+json': { schema: { $ref: '#/components/schemas/ProblemDto' } } };
      const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
      const statuses = (op: { responses: Record<string, unknown> }) => Object.keys(op.responses).sort();

      const predict = doc.paths['/predict'].post;
      expect(predict.requestBody.content['application/json'].schema).toEqual(ref('PredictRequestDto'));
      expect(predict.responses['200'].content['application/json'].schema).toEqual(ref('PredictResponseDto'));
      expect(statuses(predict)).toEqual([
        '200',
        '400',
        '401',
        '413',
        '415',
        '422',
        '429',
        '502',
        '503',
        '504',
      ]);

      const stream = doc.paths['/predict/stream'];
      expect(stream.post.requestBody.content['application/json'].schema).toEqual(ref('PredictRequestDto'));
      expect(Object.keys(stream.post.responses['200'].content)).toEqual(['text/event-stream']);
      // A failure before the first event is a problem response (an upstream 429, a timeout before the first token).
      expect(statuses(stream.post)).toEqual([
        '200',
        '400',
        '401',
        '404',
        '413',
        '415',
        '422',
        '429',
        '502',
        '503',
        '504',
      ]);
      expect(stream.get.parameters).toEqual([
        expect.objectContaining({
          name: 'question',
          in: 'query',
          required: true,
          schema: expect.objectContaining({ type: 'string', minLength: 1, maxLength: 10000 }),
        }),
      ]);
      expect(statuses(stream.get)).toEqual(['200', '401', '404', '422', '429', '431', '502', '503', '504']);

      const batch = doc.paths['/batch'].post;
      expect(batch.requestBody.content['application/json'].schema).toEqual({
        type: 'array',
        items: ref('PredictRequestDto'),
      });
      expect(batch.responses['200'].content['application/json'].schema).toEqual(ref('BatchResponseDto'));
      expect(statuses(batch)).toEqual(['200', '400', '401', '413', '415', '422', '429', '503']);

      for (const op of [predict, stream.post, stream.get, batch]) {
        for (const [status, response] of Object.entries(op.responses as Record<string, any>)) {
          if (status !== '200') expect(response.content).toEqual(problem);
        }
      }

      const schemas = doc.components.schemas;
      expect(schemas.PredictRequestDto).toEqual({
        type: 'object',
        properties: {
          question: expect.objectContaining({ type: 'string', minLength: 1, maxLength: 10000 }),
        },
        required: ['question'],
      });
      expect(Object.keys(schemas.PredictResponseDto.properties).sort()).toEqual(PREDICT_FIELDS);
      expect([...schemas.PredictResponseDto.required].sort()).toEqual(PREDICT_FIELDS);
      expect(schemas.BatchResponseDto.properties.results.items).toEqual(ref('BatchItemDto'));
      expect([...schemas.ProblemDto.required].sort()).toEqual(
        ['type', 'title', 'status', 'detail', 'code', 'request_id'].sort(),
      );
    });
  });
});
