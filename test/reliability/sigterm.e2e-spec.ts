/**
 * Graceful shutdown with real signals: the built service (`node dist/main.js`) in a process of its own, a real
 * SIGTERM, 200 open streams. dist is rebuilt first only when a source file is newer than its output (`npm test`
 * has just built it in the conformance step).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, relative } from 'node:path';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai';
import { eventually, expectDoneLast, parseSse, PROBLEM_TYPE_BASE } from '../support/http';
import { rawRequest, type Target } from '../support/sse-client';

const ROOT = join(__dirname, '..', '..');
const STREAMS = 200;
const GRACE_MS = 700;

/** Non-spec sources whose compiled file is missing or older than them. */
function staleSources(dir = join(ROOT, 'src')): string[] {
  const stale: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) stale.push(...staleSources(path));
    else if (
      entry.name.endsWith('.ts') &&
      !entry.name.endsWith('.spec.ts') &&
      !entry.name.endsWith('.d.ts')
    ) {
      const out = join(ROOT, 'dist', relative(join(ROOT, 'src'), path).replace(/\.ts$/, '.js'));
      if (!existsSync(out) || statSync(out).mtimeMs < statSync(path).mtimeMs) stale.push(path);
    }
  }
  return stale;
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function get(target: Target, path: string): Promise<number> {
  try {
    return (await rawRequest(target, 'GET', path).head).status;
  } catch {
    return 0;
  }
}

describe('real SIGTERM on the built service with 200 open streams', () => {
  let upstream: FakeOpenAI;
  let app: ChildProcess;
  let target: Target;
  let output = '';

  beforeAll(async () => {
    if (staleSources().length > 0) {
      execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
        cwd: ROOT,
        stdio: 'pipe',
      });
    }
    // Every stream's upstream call waits 5 s before its headers: all 200 are open when the signal comes.
    upstream = await startFakeOpenAI({ responder: () => ({ text: 'held', latencyMs: 5000 }) });
    target = { port: await freePort() };
    app = spawn(process.execPath, ['dist/main.js'], {
      cwd: ROOT,
      // Only what this test sets (and PATH): nothing from the developer's shell or other suites leaks in.
      env: {
        PATH: process.env.PATH ?? '',
        OPENAI_API_KEY: 'sk-test',
        OPENAI_BASE_URL: upstream.url,
        DSPY_MODEL: 'openai/gpt-4o-mini',
        HOST: '127.0.0.1',
        PORT: String(target.port),
        SHUTDOWN_GRACE_MS: String(GRACE_MS),
        MAX_CONCURRENT_PREDICTIONS: '256',
        STREAM_HEARTBEAT_MS: '60000',
        CACHE_DISK_ENABLED: 'false',
        LM_MAX_RETRIES: '0',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    app.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    app.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const ready = await eventually(
      () => get(target, '/health/ready'),
      (status) => status === 200 || app.exitCode !== null,
      15_000,
    );
    if (ready !== 200) throw new Error(`the service did not become ready (${ready}):\n${output}`);
  }, 90_000);

  afterAll(async () => {
    if (app && app.exitCode === null && app.signalCode === null) {
      app.kill('SIGKILL');
      await once(app, 'exit');
    }
    await upstream?.close();
  });

  it('fails readiness, refuses new predictions with service_draining, ends 200/200 streams retryably, exits 0', async () => {
    const streams = Array.from({ length: STREAMS }, (_, i) =>
      rawRequest(target, 'POST', '/predict/stream', { question: `sigterm stream ${i}?` }),
    );
    await eventually(
      async () => upstream.calls,
      (calls) => calls === STREAMS,
      10_000,
    );
    expect(upstream.calls).toBe(STREAMS);

    const exited = once(app, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const signalledAt = performance.now();
    app.kill('SIGTERM');

    const ready = await eventually(
      () => get(target, '/health/ready'),
      (status) => status === 503,
      GRACE_MS / 2,
    );
    const readyAfterMs = Math.round(performance.now() - signalledAt);
    expect(ready).toBe(503);

    const late = rawRequest(target, 'POST', '/predict', { question: 'too late?' });
    const lateHead = await late.head;
    const lateBody = JSON.parse((await late.ended).text) as Record<string, unknown>;
    expect(lateHead.status).toBe(503);
    expect(lateHead.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(lateHead.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(lateBody).toMatchObject({
      status: 503,
      code: 'service_draining',
      type: `${PROBLEM_TYPE_BASE}service_draining`,
    });

    const bodies = await Promise.all(streams.map(async (s) => (await s.ended).text));
    const [code, signal] = await exited;
    const exitAfterMs = Math.round(performance.now() - signalledAt);
    expect({ code, signal }).toEqual({ code: 0, signal: null });

    let draining = 0;
    for (const body of bodies) {
      const sse = parseSse(body);
      expectDoneLast(sse);
      expect(sse.events).toHaveLength(1);
      expect(sse.events[0]).toMatchObject({
        type: 'error',
        code: 'service_draining',
        status: 503,
        retryable: true,
      });
      draining += 1;
    }
    expect(draining).toBe(STREAMS);
    const ends = await Promise.all(upstream.requests.map((r) => r.closed));
    expect(ends.filter((e) => e === 'aborted')).toHaveLength(STREAMS);
    console.info(
      `SIGTERM drain: ${JSON.stringify({
        streams: STREAMS,
        endedWithDrainingThenDone: draining,
        upstreamAborted: ends.filter((e) => e === 'aborted').length,
        readyAfterMs,
        late: { status: lateHead.status, retryAfter: lateHead.headers['retry-after'] },
        exitCode: code,
        exitAfterMs,
        graceMs: GRACE_MS,
      })}`,
    );
  }, 30_000);
});
