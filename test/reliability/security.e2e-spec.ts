import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { expectProblem } from '../support/http';
import { createTestApp, type TestApp } from '../support/test-app';

const KEY_A = `key-a-${randomUUID()}`;
const KEY_B = `key-b-${randomUUID()}`;
const QUESTION = { question: 'What is the capital of France?' };

describe('access: API keys, helmet, CORS', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({
      API_KEYS: `${KEY_A}, ${KEY_B}`,
      CORS_ORIGINS: 'https://app.example.com',
    });
  });
  afterAll(() => t.close());

  it('refuses a prediction without a key with 401 problem+json, before any upstream call', async () => {
    const res = await request(t.server).post('/predict').send(QUESTION);
    expectProblem(res, 401, 'api_key_invalid');
    expect(t.upstream.requests).toHaveLength(0);
  });

  it('refuses a wrong key (Bearer and x-api-key) and never echoes it', async () => {
    const wrong = `${KEY_A}x`;
    for (const header of [{ authorization: `Bearer ${wrong}` }, { 'x-api-key': wrong }]) {
      const res = await request(t.server).post('/predict').set(header).send(QUESTION);
      expectProblem(res, 401, 'api_key_invalid');
      expect(res.text).not.toContain(wrong);
      expect(JSON.stringify(res.headers)).not.toContain(wrong);
    }
    expect(t.upstream.requests).toHaveLength(0);
  });

  it('accepts each configured key as Bearer or x-api-key', async () => {
    const a = await request(t.server).post('/predict').set('authorization', `Bearer ${KEY_A}`).send(QUESTION);
    expect(a.status).toBe(200);
    const b = await request(t.server).post('/predict').set('x-api-key', KEY_B).send(QUESTION);
    expect(b.status).toBe(200);
    expect(a.text + b.text).not.toContain(KEY_A);
    expect(a.text + b.text).not.toContain(KEY_B);
  });

  it('keeps probes and metrics open', async () => {
    for (const path of ['/health/live', '/health/ready', '/health', '/metrics']) {
      const res = await request(t.server).get(path);
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
    }
  });

  it('sends helmet headers with a CSP, and /docs still serves Swagger UI with Authorize schemes', async () => {
    const res = await request(t.server).get('/health/live');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
    expect(res.headers['content-security-policy']).not.toContain('upgrade-insecure-requests');
    expect(res.headers['x-powered-by']).toBeUndefined();
    const docs = await request(t.server).get('/docs/').redirects(2);
    expect(docs.status).toBe(200);
    expect(docs.text).toContain('swagger-ui');
    const init = await request(t.server).get('/docs/swagger-ui-init.js');
    expect(init.status).toBe(200);
    const doc = await request(t.server).get('/docs-json');
    expect(doc.status).toBe(200);
    const schemes = (doc.body as { components: { securitySchemes: Record<string, unknown> } }).components
      .securitySchemes;
    expect(Object.keys(schemes).sort()).toEqual(['bearer', 'x-api-key']);
  });

  it('answers CORS only for an allowed origin, never with a wildcard', async () => {
    const allowed = await request(t.server)
      .options('/predict')
      .set('origin', 'https://app.example.com')
      .set('access-control-request-method', 'POST')
      .set('access-control-request-headers', 'authorization,content-type');
    expect(allowed.status).toBeLessThan(300);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(allowed.headers['access-control-allow-headers']).toMatch(/authorization/i);
    const denied = await request(t.server)
      .options('/predict')
      .set('origin', 'https://evil.example.com')
      .set('access-control-request-method', 'POST');
    expect(denied.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('access: metrics behind a key when METRICS_REQUIRE_KEY', () => {
  it('refuses /metrics without a key and keeps /health open', async () => {
    const t = await createTestApp({ API_KEYS: KEY_A, METRICS_REQUIRE_KEY: 'true' });
    try {
      expectProblem(await request(t.server).get('/metrics'), 401, 'api_key_invalid');
      expect((await request(t.server).get('/metrics').set('x-api-key', KEY_A)).status).toBe(200);
      expect((await request(t.server).get('/health/live')).status).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('leaves the API open without API_KEYS', async () => {
    const t = await createTestApp({});
    try {
      expect((await request(t.server).post('/predict').send(QUESTION)).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});

describe('rate limits', () => {
  it('answers 429 problem+json with an integer Retry-After once a key exceeds RATE_LIMIT; probes are exempt', async () => {
    const key = `rl-${randomUUID()}`;
    const t = await createTestApp({ API_KEYS: key, RATE_LIMIT: '5', RATE_LIMIT_TTL_MS: '60000' });
    try {
      const statuses: number[] = [];
      let limited: request.Response | undefined;
      for (let i = 0; i < 8; i++) {
        const res = await request(t.server).post('/predict').set('x-api-key', key).send(QUESTION);
        statuses.push(res.status);
        if (res.status === 429) limited ??= res;
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
      expectProblem(limited!, 429, 'rate_limited');
      expect(limited!.headers['retry-after']).toMatch(/^[1-9]\d*$/);
      for (let i = 0; i < 10; i++) expect((await request(t.server).get('/health/live')).status).toBe(200);
      expect((await request(t.server).get('/metrics')).status).toBe(200);
      // Unauthenticated attempts count against the address, not the key: key guessing is limited too.
      const guesses: number[] = [];
      for (let i = 0; i < 7; i++) {
        guesses.push(
          (await request(t.server).post('/predict').set('x-api-key', `guess-${i}`).send(QUESTION)).status,
        );
      }
      expect(guesses.filter((s) => s === 401)).toHaveLength(5);
      expect(guesses.filter((s) => s === 429)).toHaveLength(2);
    } finally {
      await t.close();
    }
  });

  it('shares the limit across two app instances through Redis', async () => {
    const key = `rl-redis-${randomUUID()}`;
    const env = {
      API_KEYS: key,
      RATE_LIMIT: '6',
      RATE_LIMIT_TTL_MS: '60000',
      REDIS_URL: 'redis://127.0.0.1:6379',
    };
    const one = await createTestApp(env);
    const two = await createTestApp(env);
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t = i % 2 === 0 ? one : two;
        statuses.push((await request(t.server).post('/predict').set('x-api-key', key).send(QUESTION)).status);
      }
      // Per-process counters would allow 6 on each instance (all 10); shared ones allow 6 in total.
      expect(statuses.filter((s) => s === 200)).toHaveLength(6);
      expect(statuses.filter((s) => s === 429)).toHaveLength(4);
    } finally {
      await one.close();
      await two.close();
    }
  });
});
