/**
 * What reaches the logs. The app's real pino output (nestjs-pino with the app's own options from
 * loggerModuleOptions, Nest's logger routed through it as main.ts does, LOG_LEVEL=trace so every line is written)
 * is captured line by line while the app serves successful, rejected, failing and streaming requests, and
 * searched for secrets: the upstream key (OPENAI_API_KEY), the configured API_KEYS and whatever a client sent as
 * Authorization or x-api-key. Questions and answers stay out of the logs unless LOG_PROMPTS=true, which is also
 * run, to show the search finds what is there. No response body or header may carry a configured key either.
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { parseSse } from '../support/http';
import { chatCompletion, PARTIAL_ANSWER_CHUNKS, qaFields } from '../support/qa';
import { createTestApp, type TestApp } from '../support/test-app';

const RUN = randomUUID();
const UPSTREAM_KEY = `sk-upstream-${randomUUID()}`;
const KEY_A = `api-key-a-${randomUUID()}`;
const KEY_B = `api-key-b-${randomUUID()}`;
/** What clients send that is not a configured key: it must not be logged either. */
const WRONG_BEARER = `wrong-bearer-${randomUUID()}`;
const WRONG_X_API_KEY = `wrong-x-api-key-${randomUUID()}`;
const BASIC_SECRET = `basic-secret-${randomUUID()}`;
/** Redis accepts any password for its passwordless default user, so a credentialed REDIS_URL works here. */
const REDIS_PASSWORD = `redis-pw-${randomUUID()}`;
const LM_TIMEOUT_MS = 1000;

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

interface LoggedApp extends TestApp {
  /** Every line the app logged so far. */
  lines: string[];
}

/** AppModule over real HTTP as every e2e suite builds it, with its real log output captured line by line. */
async function createLoggedApp(env: Record<string, string>): Promise<LoggedApp> {
  const lines: string[] = [];
  let partial = '';
  const logTo = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const text = partial + chunk.toString('utf8');
      const parts = text.split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts.filter((l) => l.length > 0));
      done();
    },
  });
  const app = await createTestApp(
    {
      OPENAI_API_KEY: UPSTREAM_KEY,
      LM_TIMEOUT_MS: String(LM_TIMEOUT_MS),
      LOG_LEVEL: 'trace',
      API_KEYS: `${KEY_A},${KEY_B}`,
      ...env,
    },
    {},
    { logTo },
  );
  return { ...app, lines };
}

function send(
  server: Server,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<Reply> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const { port } = server.address() as AddressInfo;
  return new Promise<Reply>((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      method,
      path,
      agent: false,
      headers: {
        ...headers,
        ...(payload === undefined
          ? {}
          : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
      },
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer to ${method} ${path}`)));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Every secret in the forms it could be logged in: as sent, its random part alone, and base64 for Basic auth. */
function needles(): Record<string, string> {
  const basic = Buffer.from(`client:${BASIC_SECRET}`).toString('base64');
  const out: Record<string, string> = {
    UPSTREAM_KEY,
    KEY_A,
    KEY_B,
    WRONG_BEARER,
    WRONG_X_API_KEY,
    BASIC_SECRET,
    REDIS_PASSWORD,
    'basic credentials (base64)': basic,
  };
  for (const [name, value] of Object.entries({ UPSTREAM_KEY, KEY_A, KEY_B, WRONG_BEARER, WRONG_X_API_KEY })) {
    out[`${name} (random part)`] = value.slice(-36);
  }
  return out;
}

function found(haystack: string[], wanted: Record<string, string>): string[] {
  return Object.entries(wanted)
    .filter(([, needle]) => haystack.some((line) => line.includes(needle)))
    .map(([name]) => name);
}

/** Every log line parses as JSON: a secret cannot hide in a line the scan would misread. */
function expectJsonLines(lines: string[]): void {
  const broken = lines.filter((l) => {
    try {
      JSON.parse(l);
      return false;
    } catch {
      return true;
    }
  });
  expect(broken).toEqual([]);
}

/**
 * One of each kind of exchange, with the question and answer markers of `tag`: successes on every prediction
 * route (keys sent both ways), 401s with wrong keys, a 422, an upstream 429, 401 (whose message echoes the
 * upstream key, as some OpenAI-compatible servers do) and 500, a timeout (504), a stream that fails mid-way, and
 * the probes and metrics.
 */
async function exercise(
  t: LoggedApp,
  tag: string,
): Promise<{ replies: Reply[]; question: string; answer: string }> {
  const question = `What is the secret question ${tag}?`;
  const fields = qaFields(`secret answer ${tag}`);
  const answer = fields.answer;
  const bearer = { authorization: `Bearer ${KEY_A}` };
  const xApiKey = { 'x-api-key': KEY_B };
  const replies: Reply[] = [];
  const go = async (
    method: string,
    path: string,
    headers: Record<string, string>,
    body: unknown,
    status: number,
  ): Promise<Reply> => {
    const reply = await send(t.server, method, path, headers, body);
    expect({ method, path, status: reply.status }).toEqual({ method, path, status });
    replies.push(reply);
    return reply;
  };

  // Successes: the answer really comes back, so its absence from the logs means something.
  t.upstream.respondWith(() => ({ text: chatCompletion(fields) }));
  const ok = await go('POST', '/predict', bearer, { question }, 200);
  expect(JSON.parse(ok.text).answer).toBe(answer);
  // The upstream key really is in use.
  expect(t.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
  await go('POST', '/predict', { ...xApiKey, 'cache-control': 'no-cache' }, { question }, 200);
  const streamed = await go('POST', '/predict/stream', xApiKey, { question: `${question} (stream)` }, 200);
  expect(parseSse(streamed.text).events.at(-1)).toMatchObject({ type: 'complete', answer });
  const viaGet = await go(
    'GET',
    `/predict/stream?question=${encodeURIComponent(`${question} (get)`)}`,
    bearer,
    undefined,
    200,
  );
  expect(parseSse(viaGet.text).data.at(-1)).toBe('[DONE]');
  await go(
    'POST',
    '/batch',
    bearer,
    [{ question: `${question} (batch 1)` }, { question: `${question} (batch 2)` }],
    200,
  );

  // Rejected before any upstream call.
  await go('POST', '/predict', { authorization: `Bearer ${WRONG_BEARER}` }, { question }, 401);
  await go('POST', '/predict/stream', { 'x-api-key': WRONG_X_API_KEY }, { question }, 401);
  await go(
    'GET',
    `/predict/stream?question=${encodeURIComponent(question)}`,
    {
      authorization: `Basic ${Buffer.from(`client:${BASIC_SECRET}`).toString('base64')}`,
    },
    undefined,
    401,
  );
  await go('POST', '/predict', {}, { question }, 401);
  await go('POST', '/predict', bearer, { question: 42, api_key: KEY_B, authorization: WRONG_BEARER }, 422);
  await go('POST', '/batch', xApiKey, [{ question }, { question: '' }], 422);

  // The upstream fails: 429, its own 401 echoing our key back, 500, too slow.
  t.upstream.respondWith(() => ({ type: 'error', status: 429, headers: { 'retry-after': '1' } }));
  await go('POST', '/predict', bearer, { question: `${question} (429)` }, 429);
  t.upstream.respondWith(() => ({
    type: 'error',
    status: 401,
    message: `Incorrect API key provided: ${UPSTREAM_KEY}. Authorization: Bearer ${UPSTREAM_KEY}`,
  }));
  await go('POST', '/predict', bearer, { question: `${question} (upstream 401)` }, 502);
  t.upstream.respondWith(() => ({ type: 'error', status: 500, message: `boom for ${UPSTREAM_KEY}` }));
  await go('POST', '/predict', bearer, { question: `${question} (500)` }, 502);
  t.upstream.respondWith(() => ({ text: chatCompletion(fields), latencyMs: LM_TIMEOUT_MS + 500 }));
  await go('POST', '/predict', bearer, { question: `${question} (timeout)` }, 504);
  // A stream that breaks after a few tokens: the failure is an event, the status stays 200.
  t.upstream.respondWith(() => ({
    chunks: PARTIAL_ANSWER_CHUNKS,
    resetAfterChunks: PARTIAL_ANSWER_CHUNKS.length,
  }));
  const broken = await go('POST', '/predict/stream', bearer, { question: `${question} (reset)` }, 200);
  expect(parseSse(broken.text).events.at(-1)).toMatchObject({ type: 'error' });
  t.upstream.respondWith(null);

  for (const path of ['/health', '/health/live', '/health/ready', '/metrics', '/metrics/prometheus']) {
    await go('GET', path, bearer, undefined, 200);
  }
  return { replies, question, answer };
}

describe('secrets, prompts and answers in the logs', () => {
  describe('with LOG_PROMPTS unset', () => {
    let t: LoggedApp;
    let run: Awaited<ReturnType<typeof exercise>>;
    beforeAll(async () => {
      t = await createLoggedApp({ REDIS_URL: `redis://default:${REDIS_PASSWORD}@127.0.0.1:6379` });
      run = await exercise(t, `hidden-${RUN}`);
      // pino-http writes the access line on 'finish'; let the last ones land.
      await new Promise((resolve) => setTimeout(resolve, 50));
    }, 30_000);
    afterAll(() => t.close());

    it('logs the traffic at all: bootstrap lines, access lines of every status, the filter, with request ids', () => {
      expectJsonLines(t.lines);
      const parsed = t.lines.map((l) => JSON.parse(l) as Record<string, any>);
      const statuses = new Set(parsed.map((l) => l.res?.statusCode).filter((s) => s !== undefined));
      expect([...statuses].sort()).toEqual(expect.arrayContaining([200, 401, 422, 429, 502, 504]));
      expect(parsed.some((l) => l.context === 'ProblemDetailsFilter' && l.code === 'lm_auth_failed')).toBe(
        true,
      );
      expect(parsed.some((l) => l.context === 'NestApplication')).toBe(true);
      expect(parsed.some((l) => l.context === 'InstanceLoader')).toBe(true);
      // The Redis tier announces where it connected: the URL is there, its password is not (next test).
      expect(
        parsed.some((l) => /Redis cache connected at redis:\/\/.*127\.0\.0\.1:6379/.test(String(l.msg))),
      ).toBe(true);
      const accessLines = parsed.filter((l) => l.res?.statusCode !== undefined);
      expect(accessLines.every((l) => typeof l.request_id === 'string')).toBe(true);
      // Every exchange but the 5 probe/metrics scrapes (not logged on purpose) has its access line.
      expect(accessLines).toHaveLength(run.replies.length - 5);
      process.stdout.write(`log-secrets: ${t.lines.length} log lines scanned (LOG_PROMPTS unset)\n`);
    });

    it('never logs the upstream key, a configured API key, or what a client sent as credentials', () => {
      expect(found(t.lines, needles())).toEqual([]);
    });

    it('never logs the question or the answer', () => {
      expect(
        found(t.lines, { question: run.question, answer: run.answer, 'answer marker': `hidden-${RUN}` }),
      ).toEqual([]);
    });

    it('never puts a configured key (or a client credential) in a response body or header', () => {
      const responses = run.replies.map((r) => `${r.text}\n${JSON.stringify(r.headers)}`);
      expect(found(responses, needles())).toEqual([]);
    });
  });

  describe('with LOG_PROMPTS=true', () => {
    let t: LoggedApp;
    let run: Awaited<ReturnType<typeof exercise>>;
    beforeAll(async () => {
      t = await createLoggedApp({ LOG_PROMPTS: 'true' });
      run = await exercise(t, `shown-${RUN}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }, 30_000);
    afterAll(() => t.close());

    it('logs the question (the GET stream URL carries it), so the search above can fail', () => {
      expectJsonLines(t.lines);
      const asLogged = encodeURIComponent(`${run.question} (get)`);
      expect(t.lines.some((l) => l.includes(asLogged))).toBe(true);
      process.stdout.write(`log-secrets: ${t.lines.length} log lines scanned (LOG_PROMPTS=true)\n`);
    });

    it('still never logs a key or a client credential', () => {
      expect(found(t.lines, needles())).toEqual([]);
      const responses = run.replies.map((r) => `${r.text}\n${JSON.stringify(r.headers)}`);
      expect(found(responses, needles())).toEqual([]);
    });
  });
});
