/**
 * Helpers of the deployment checks: repository paths, the variables the app reads, the drain bound, and real
 * processes of the built app (`node dist/main.js`) with their logs.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export const ROOT = join(__dirname, '..', '..', '..');
export const repoPath = (...parts: string[]): string => join(ROOT, ...parts);
export const readRepoFile = (...parts: string[]): string => readFileSync(repoPath(...parts), 'utf8');

/** The absolute path of an executable on PATH, or null. */
export function which(bin: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, bin))) return join(dir, bin);
  }
  return null;
}

/** Every environment variable src/config reads (`env.int('PORT', …)` and friends). */
export function appVariables(): Set<string> {
  const names = new Set<string>();
  const dir = repoPath('src', 'config');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'))) {
    const source = readFileSync(join(dir, file), 'utf8');
    for (const m of source.matchAll(/env\.\w+\(\s*'([A-Z][A-Z0-9_]*)'/g)) names.add(m[1]);
  }
  return names;
}

/** The variables .env.example documents. */
export function documentedVariables(): Set<string> {
  return new Set([...readRepoFile('.env.example').matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));
}

/** The seed's variable names, which every deployment file keeps. */
export const SEED_VARIABLES = [
  'OPENAI_API_KEY',
  'DSPY_MODEL',
  'PROGRAM_STATE_PATH',
  'TRACK_USAGE',
  'ENABLE_STREAMING',
  'ENABLE_METRICS',
  'CACHE_DISK_ENABLED',
  'CACHE_MEMORY_ENABLED',
  'CACHE_DISK_SIZE',
  'CACHE_MEMORY_ENTRIES',
  'HOST',
  'PORT',
  'WORKERS',
];

/** The app's defaults for the variables that bound a request and the drain (src/config/*.config.ts). */
const LM_DEFAULTS = {
  LM_TIMEOUT_MS: 60_000,
  LM_MAX_RETRIES: 2,
  REQUEST_DEADLINE_MS: 90_000,
  SHUTDOWN_GRACE_MS: 20_000,
};

/**
 * How long shutdown can take after SIGTERM, in seconds. Open streams get SHUTDOWN_GRACE_MS; a request in flight
 * ends within its LM call's attempts (LM_TIMEOUT_MS each, LM_MAX_RETRIES + 1 of them) and never after
 * REQUEST_DEADLINE_MS. Grace periods must exceed it.
 */
export function drainSeconds(env: Record<string, string | undefined>): number {
  const num = (name: keyof typeof LM_DEFAULTS) => Number(env[name] || LM_DEFAULTS[name]);
  const request = Math.min(num('LM_TIMEOUT_MS') * (num('LM_MAX_RETRIES') + 1), num('REQUEST_DEADLINE_MS'));
  return Math.max(num('SHUTDOWN_GRACE_MS'), request) / 1000;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns true; throws naming `what` after `timeoutMs`. */
export async function until(probe: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** GET or POST with a fresh connection each time (`Connection: close`), so a balancer sees every request. */
export async function http(
  url: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ status: number; headers: Headers; text: string; json(): any }> {
  const res = await fetch(url, {
    signal: AbortSignal.timeout(init.timeoutMs ?? 15_000),
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: {
      connection: 'close',
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...init.headers,
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
}

let built = false;

/**
 * Compiles src/ into dist/ (incremental: seconds when nothing changed), once per test file. A lock directory keeps
 * two jest workers from writing dist/ at the same time; one older than the longest build is stale.
 */
export async function ensureBuilt(): Promise<void> {
  if (built) return;
  const lock = join(
    tmpdir(),
    `dspy-nest-api-build-${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}.lock`,
  );
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 120_000) rmSync(lock, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`${lock} is held for too long`);
      else await sleep(200);
    }
  }
  try {
    execFileSync(
      process.execPath,
      [repoPath('node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      {
        cwd: ROOT,
        stdio: 'pipe',
      },
    );
    built = true;
  } catch (error) {
    const out = (error as { stdout?: Buffer }).stdout?.toString() ?? '';
    throw new Error(`tsc -p tsconfig.build.json failed:\n${out.slice(0, 4000)}`);
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export interface AppProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** The JSON log lines so far (non-JSON lines are skipped). */
  logs(): Array<Record<string, any>>;
  /** Settles once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it ended. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `node dist/main.js` with only `env` on top of PATH and HOME (as in a container), on 127.0.0.1:`port`, resolved
 * once `/health/ready` answers 200.
 */
export async function startApp(env: Record<string, string>, port?: number): Promise<AppProcess> {
  const listenPort = port ?? (await freePort());
  const child = spawn(process.execPath, [repoPath('dist', 'main.js')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(listenPort),
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let gone = false;
  void exited.then(() => (gone = true));
  const url = `http://127.0.0.1:${listenPort}`;
  const app: AppProcess = {
    child,
    port: listenPort,
    url,
    output: () => output,
    logs: () =>
      output
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .flatMap((line) => {
          try {
            return [JSON.parse(line) as Record<string, any>];
          } catch {
            return [];
          }
        }),
    exited,
    async stop(graceMs = 10_000) {
      if (!gone) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
  try {
    await until(
      // An exited process ends the wait at once; it is reported below.
      async () => gone || (await http(`${url}/health/ready`)).status === 200,
      `${url}/health/ready`,
    );
  } catch (error) {
    await app.stop(1000);
    throw new Error(`the app did not become ready (${String(error)}):\n${output.slice(-4000)}`);
  }
  if (gone) throw new Error(`the app exited during startup:\n${output.slice(-4000)}`);
  return app;
}

/** The sum of a Prometheus sample family over all label sets (`predictions_total` → every line of it). */
export function promSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const set = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}
