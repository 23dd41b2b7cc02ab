/**
 * WORKERS=2: `node dist/main.js` as a cluster (src/cluster.ts). Both workers serve the shared port, any worker's
 * /metrics/prometheus is the sum over both, a crashed worker comes back, and SIGTERM drains every worker.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dspyCompletionText, type FakeOpenAI, startFakeOpenAI } from '../support/fake-openai';
import { uniqueQuestion } from '../support/qa';
import { type AppProcess, ensureBuilt, http, promSum, sleep, startApp, until } from './support/deploy';

jest.setTimeout(60_000);

describe('WORKERS=2 (node:cluster)', () => {
  let upstream: FakeOpenAI;
  let app: AppProcess;
  let cacheDir: string;

  /** Pids of the workers the primary reported listening, in order. */
  const listeningWorkers = () =>
    app
      .logs()
      .filter((l) => l.context === 'Cluster' && l.msg === 'worker listening')
      .map((l) => l.workerPid as number);

  /** Pid of every worker that logged a completed POST /predict. */
  const predictPids = () =>
    app
      .logs()
      .filter((l) => l.req?.url === '/predict' && l.res?.statusCode === 200)
      .map((l) => l.pid as number);

  const predict = () =>
    http(`${app.url}/predict`, { body: { question: uniqueQuestion('Which worker answers') } });

  beforeAll(async () => {
    await ensureBuilt();
    upstream = await startFakeOpenAI({ record: false });
    cacheDir = mkdtempSync(join(tmpdir(), 'multi-worker-'));
    app = await startApp({
      WORKERS: '2',
      OPENAI_API_KEY: 'sk-test',
      OPENAI_BASE_URL: upstream.url,
      LM_MAX_RETRIES: '0',
      CACHE_DIR: cacheDir,
    });
    await until(async () => listeningWorkers().length >= 2, 'both workers listening');
  });

  afterAll(async () => {
    await app?.stop(5000);
    await upstream?.close();
    rmSync(cacheDir, { recursive: true, force: true });
  });

  it('serves from both workers, and /metrics/prometheus sums their counters', async () => {
    const n = 12;
    for (let i = 0; i < n; i++) {
      // One connection per request: the primary hands connections to the workers round-robin.
      const res = await predict();
      expect(res.status).toBe(200);
    }
    const pids = predictPids();
    const perWorker = [...new Set(pids)].map((pid) => pids.filter((p) => p === pid).length);
    expect(perWorker).toHaveLength(2);
    expect(Math.max(...perWorker)).toBeLessThan(n);

    // Every scrape, whichever worker answers it, reports all n predictions and n LM calls.
    for (let i = 0; i < 4; i++) {
      const scrape = await http(`${app.url}/metrics/prometheus`);
      expect(scrape.status).toBe(200);
      expect(scrape.headers.get('content-type')).toMatch(/^text\/plain;.*version=0\.0\.4/);
      expect(promSum(scrape.text, 'predictions_total', { route: 'predict' })).toBe(n);
      expect(promSum(scrape.text, 'lm_requests_total', { outcome: 'ok' })).toBe(n);
      // One version line for the cluster, not one per worker.
      expect(scrape.text.match(/^nodejs_version_info\{/gm)).toHaveLength(1);
    }
  });

  it('restarts a crashed worker, and keeps serving meanwhile', async () => {
    const [victim, survivor] = listeningWorkers().slice(-2);
    process.kill(victim, 'SIGKILL');
    // Once the primary has seen the death (a connection it hands over in that very instant is lost: Node's
    // round-robin handoff never hears back from a dead worker), the survivor takes every connection while the
    // primary waits out the backoff.
    await until(
      async () => app.logs().some((l) => l.msg === 'worker died; restarting' && l.workerPid === victim),
      'the primary to notice the crash',
    );
    for (let i = 0; i < 4; i++) expect((await predict()).status).toBe(200);
    await until(async () => listeningWorkers().length >= 3, 'a replacement worker', 15_000);
    const replacement = listeningWorkers().at(-1)!;
    expect([victim, survivor]).not.toContain(replacement);
    const scrape = await http(`${app.url}/metrics/prometheus`);
    expect(scrape.status).toBe(200);
  });

  it('drains on SIGTERM: in-flight requests finish, then every worker and the primary exit', async () => {
    upstream.respondWith((request) => ({ text: dspyCompletionText(request.body), latencyMs: 600 }));
    const before = upstream.calls;
    const inFlight = Array.from({ length: 4 }, () => predict());
    await until(async () => upstream.calls >= before + 4, 'four requests in flight at the upstream');
    const workers = listeningWorkers().slice(-2);
    app.child.kill('SIGTERM');
    const results = await Promise.all(inFlight);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    const exit = await app.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    await sleep(100);
    for (const pid of workers) expect(() => process.kill(pid, 0)).toThrow();
    expect(app.logs().filter((l) => l.msg === 'draining: readiness now fails')).toHaveLength(2);
  });
});
