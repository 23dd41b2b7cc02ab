/**
 * The embedded local model end to end, with the tiny random-weight GGUF: gibberish text, but the grammar makes
 * every answer parse and fit the schema through /predict, /predict/stream and /batch.
 *
 * node-llama-cpp is ESM with top-level await and jest's CommonJS transform turns `import()` into `require()`, so
 * this suite runs the built service (`node dist/main.js`) as a child process instead of `createTestApp`.
 * Generations are kept short (LOCAL_MAX_FIELD_CHARS) and few; with one thread each takes well under a second here.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import request from 'supertest';
import { expectDoneLast, parseSse } from './support/http';

const ROOT = join(__dirname, '..');
/** The tiny random-weight test model of the shared folder beside the repository (never copied into it). */
const MODEL = join(ROOT, '..', 'shared', 'models', 'llama-2-tiny-random.gguf');
const FIELDS = ['reasoning', 'answer', 'key_concepts', 'question_type'];
const MAX_CHARS = 24;
const SLOW = 60_000;

const describeIfModel = existsSync(MODEL) ? describe : describe.skip;

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function expectQaFields(body: Record<string, unknown>): void {
  for (const f of FIELDS) {
    expect(typeof body[f]).toBe('string');
    expect((body[f] as string).length).toBeGreaterThan(0);
    expect((body[f] as string).length).toBeLessThanOrEqual(MAX_CHARS);
  }
}

describeIfModel('local model (node-llama-cpp, DSPY_MODEL=local/…)', () => {
  let child: ChildProcess;
  let url: string;
  let output = '';
  const readinessWhileLoading: { state: string; status: number }[] = [];

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist', 'main.js'))) {
      execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
        cwd: ROOT,
      });
    }
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of ['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'PROGRAM_STATE_PATH', 'REDIS_URL']) delete env[k];
    Object.assign(env, {
      DSPY_MODEL: `local/${MODEL}`,
      HOST: '127.0.0.1',
      PORT: String(port),
      WORKERS: '1',
      LOG_LEVEL: 'info',
      CACHE_DISK_ENABLED: 'false',
      LOCAL_MAX_FIELD_CHARS: String(MAX_CHARS),
      LOCAL_SEQUENCES: '2',
      LOCAL_MODEL_DOWNLOAD: 'false',
    });
    child = spawn(process.execPath, ['dist/main.js'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const res = await request(url).get('/health');
        const state = res.body?.dependencies?.local_model?.state as string | undefined;
        const ready = await request(url).get('/health/ready');
        readinessWhileLoading.push({ state: state ?? 'unknown', status: ready.status });
        if (state === 'loaded') break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`service did not come up:\n${output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 120_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });

  it('is not ready until the model is loaded, then ready', async () => {
    const early = readinessWhileLoading.filter((o) => o.state !== 'loaded');
    expect(early.every((o) => o.status === 503)).toBe(true);
    await request(url).get('/health/ready').expect(200);
  });

  it('/health reports the local model: file, size and load state', async () => {
    const res = await request(url).get('/health').expect(200);
    expect(res.body.dependencies.local_model).toMatchObject({
      status: 'up',
      file: MODEL,
      size_bytes: expect.any(Number),
      state: 'loaded',
      load_ms: expect.any(Number),
    });
    expect(res.body.dependencies.lm).toMatchObject({ status: 'up', configured: true });
  });

  it(
    '/predict answers with every field, bounded, and real token counts',
    async () => {
      const res = await request(url).post('/predict').send({ question: 'What is AI?' });
      expect(res.status).toBe(200);
      expectQaFields(res.body);
      const usage = res.body.usage[`local/${MODEL}`];
      expect(usage.prompt_tokens).toBeGreaterThan(0);
      expect(usage.completion_tokens).toBeGreaterThan(0);
    },
    SLOW,
  );

  it(
    '/predict/stream streams answer tokens and completes with every field',
    async () => {
      const res = await request(url).post('/predict/stream').send({ question: 'What is ML?' });
      expect(res.status).toBe(200);
      const sse = parseSse(res.text);
      expectDoneLast(sse);
      const complete = sse.events.find((e) => e.type === 'complete');
      expect(complete).toBeDefined();
      expectQaFields(complete as Record<string, unknown>);
      const tokens = sse.events
        .filter((e) => e.type === 'token' && e.field === 'answer')
        .map((e) => e.content);
      expect(tokens.length).toBeGreaterThan(0);
      expect(tokens.join('').trim()).toBe(String(complete?.answer).trim());
    },
    SLOW,
  );

  it(
    '/batch answers its items through the shared model',
    async () => {
      const questions = ['What is DL?', 'What is NLP?'];
      const res = await request(url)
        .post('/batch')
        .send(questions.map((question) => ({ question })))
        .expect(200);
      expect(res.body.count).toBe(2);
      for (const item of res.body.results as Record<string, unknown>[]) {
        expect(item.error).toBeNull();
        expectQaFields(item);
      }
    },
    SLOW * 2,
  );

  it(
    '`npm run optimize` runs a small budgeted optimization against the local model',
    async () => {
      const out = join(mkdtempSync(join(tmpdir(), 'local-opt-')), 'state.json');
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        DSPY_MODEL: `local/${MODEL}`,
        LOCAL_MAX_FIELD_CHARS: String(MAX_CHARS),
      };
      delete env.OPENAI_API_KEY;
      delete env.OPENAI_BASE_URL;
      const report = execFileSync(
        process.execPath,
        ['dist/cli/optimize.js', '--max-calls', '20', '--seed', '1', '--out', out],
        { cwd: ROOT, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      expect(report).toMatch(/LM calls\s+20 /);
      const saved = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
      expect(Object.keys(saved)).toEqual(['predict.predict', 'metadata']);
    },
    SLOW * 2,
  );
});
