/**
 * The Dockerfile, parsed (dockerfile-ast) and held to the deployment rules, with .dockerignore and the
 * HEALTHCHECK script. No Docker engine runs here: scripts/build-like-image.sh builds the same artifact.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Copy, DockerfileParser, type From, type Instruction } from 'dockerfile-ast';
import { compilePattern, isExcluded, listContext, readDockerignore } from '../../scripts/docker-context';
import { readRepoFile, repoPath, ROOT } from './support/deploy';

const dockerfile = DockerfileParser.parse(readRepoFile('Dockerfile'));
const instructions = dockerfile.getInstructions();
const froms = dockerfile.getFROMs();

interface Stage {
  from: From;
  name: string | null;
  instructions: Instruction[];
}

/** Instructions grouped by the FROM that starts their stage. */
const stages: Stage[] = froms.map((from, i) => {
  const start = from.getRange().start.line;
  const end = i + 1 < froms.length ? froms[i + 1].getRange().start.line : Number.POSITIVE_INFINITY;
  return {
    from,
    name: from.getBuildStage(),
    instructions: instructions.filter((ins) => {
      const line = ins.getRange().start.line;
      return line > start && line < end;
    }),
  };
});
const runtime = stages[stages.length - 1];

const keyword = (stage: Stage, k: string) => stage.instructions.filter((i) => i.getKeyword() === k);
const args = (ins: Instruction) => ins.getArgumentsContent() ?? '';
const runs = (stage: Stage) => keyword(stage, 'RUN').map(args);

/** An exec-form instruction's argument list; null for the shell form. */
function execForm(ins: Instruction, after = ''): string[] | null {
  const text = args(ins).slice(after.length).trim();
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) && parsed.every((p) => typeof p === 'string') ? parsed : null;
  } catch {
    return null;
  }
}

/** Stages this image derives from (a FROM naming an earlier stage is not a base image). */
const baseImages = froms.filter((f) => !stages.some((s) => s.name !== null && s.name === f.getImageName()));

describe('Dockerfile', () => {
  it('builds FROM a Node LTS slim image pinned to an exact release (or a digest), never latest', () => {
    expect(baseImages.length).toBeGreaterThan(0);
    for (const from of baseImages) {
      const tag = from.getImageTag();
      const digest = from.getImageDigest();
      expect({
        image: from.getImage(),
        pinned: !!digest || /^\d+\.\d+\.\d+(-[a-z0-9.-]+)?$/.test(tag ?? ''),
      }).toEqual({
        image: from.getImage(),
        pinned: true,
      });
      if (digest) expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/);
      expect(from.getImageName()).toBe('node');
      // Node's active and maintenance LTS lines (20, 22); slim to keep the attack surface small.
      expect(tag).toMatch(/^(20|22)\.\d+\.\d+-(bookworm|bullseye|trixie)-slim$/);
    }
    // Builder and runtime on one release, so the native module built in one loads in the other.
    expect(new Set(baseImages.map((f) => f.getImage())).size).toBe(1);
  });

  it('is multi-stage: npm ci from the lock, then build, then prune to production dependencies', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const all = stages.flatMap((s) => runs(s));
    expect(all.some((r) => /\bnpm ci\b/.test(r))).toBe(true);
    expect(all.some((r) => /\bnpm (install|i)\b/.test(r))).toBe(false);
    expect(all.some((r) => /\bnpm run build\b/.test(r))).toBe(true);
    expect(all.some((r) => /\bnpm prune --omit=dev\b/.test(r))).toBe(true);

    // The lock is in the context before npm ci runs.
    const ciLine = instructions.find((i) => i.getKeyword() === 'RUN' && /\bnpm ci\b/.test(args(i)))!;
    const lockCopy = instructions.find(
      (i) => i.getKeyword() === 'COPY' && /\bpackage-lock\.json\b/.test(args(i)),
    );
    expect(lockCopy).toBeDefined();
    expect(lockCopy!.getRange().start.line).toBeLessThan(ciLine.getRange().start.line);

    // The runtime stage takes node_modules from the stage that pruned them, and installs nothing with npm.
    const pruned = stages.find((s) => runs(s).some((r) => /npm prune --omit=dev/.test(r)))!;
    const modulesCopy = (keyword(runtime, 'COPY') as Copy[]).find((c) => /node_modules/.test(args(c)));
    expect(modulesCopy?.getFromFlag()?.getValue()).toBe(pruned.name);
    expect(runs(runtime).some((r) => /\bnpm\b/.test(r))).toBe(false);
  });

  it('compiles the native module in the builder and keeps compilers out of the runtime stage', () => {
    const builder = stages.find((s) => runs(s).some((r) => /\bnpm ci\b/.test(r)))!;
    const builderRuns = runs(builder).join('\n');
    for (const tool of ['python3', 'make', 'g++'])
      expect(builderRuns).toMatch(new RegExp(`\\b${tool.replace(/\+/g, '\\+')}`));
    const runtimeRuns = runs(runtime).join('\n');
    expect(runtimeRuns).not.toMatch(/(^|\s)(g\+\+|gcc|make|python3|build-essential|clang)(\s|$)/m);
    expect(runtime.from.getImageName()).toBe('node');
  });

  it('runs as a numeric non-root user', () => {
    const users = keyword(runtime, 'USER');
    expect(users.length).toBeGreaterThan(0);
    const user = args(users[users.length - 1]);
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(':')[0])).toBeGreaterThan(0);
    if (user.includes(':')) expect(Number(user.split(':')[1])).toBeGreaterThan(0);
    const cmd = keyword(runtime, 'CMD')[0];
    expect(users[users.length - 1].getRange().start.line).toBeLessThan(cmd.getRange().start.line);
  });

  it('starts node in exec form under an init (tini), never npm as PID 1', () => {
    const entrypoints = keyword(runtime, 'ENTRYPOINT');
    const cmds = keyword(runtime, 'CMD');
    expect(entrypoints).toHaveLength(1);
    expect(cmds).toHaveLength(1);
    const entrypoint = execForm(entrypoints[0]);
    const cmd = execForm(cmds[0]);
    expect(entrypoint).not.toBeNull();
    expect(cmd).not.toBeNull();
    expect(entrypoint).toEqual(['/usr/bin/tini', '--']);
    expect(runs(runtime).join('\n')).toMatch(/apt-get install[^\n]*\btini\b/);
    expect(cmd).toEqual(['node', 'dist/main.js']);
  });

  it('sets NODE_ENV=production in the runtime stage', () => {
    const env = keyword(runtime, 'ENV').flatMap((e) =>
      (e as unknown as { getProperties(): { getName(): string; getValue(): string | null }[] })
        .getProperties()
        .map((p) => [p.getName(), p.getValue()] as const),
    );
    expect(Object.fromEntries(env)).toMatchObject({ NODE_ENV: 'production' });
  });

  it('has a HEALTHCHECK that runs the node probe of /health/live (no curl), in exec form', () => {
    const checks = keyword(runtime, 'HEALTHCHECK');
    expect(checks).toHaveLength(1);
    const text = args(checks[0]);
    const command = execForm(checks[0], text.slice(0, text.indexOf('CMD') + 'CMD'.length));
    expect(command).toEqual(['node', 'scripts/healthcheck.js']);
    const flags = Object.fromEntries(
      (checks[0] as unknown as { getFlags(): { getName(): string; getValue(): string | null }[] })
        .getFlags()
        .map((f) => [f.getName(), f.getValue()]),
    );
    expect(Object.keys(flags).sort()).toEqual(['interval', 'retries', 'start-period', 'timeout']);
    // The script is in the image, and nothing in it needs curl or wget.
    expect(keyword(runtime, 'COPY').map(args).join('\n')).toMatch(/scripts\/healthcheck\.js/);
    expect(readRepoFile('scripts', 'healthcheck.js')).toMatch(/\/health\/live/);
    expect(runs(runtime).join('\n')).not.toMatch(/\b(curl|wget)\b/);
  });

  it('puts no secret in ENV or ARG', () => {
    const secretName = /(KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH)/i;
    const secretValue = /(sk-[A-Za-z0-9]{8,}|ghp_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16})/;
    for (const ins of instructions.filter((i) => ['ENV', 'ARG'].includes(i.getKeyword()))) {
      const text = args(ins);
      const names = [...text.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=/g)].map((m) => m[1]);
      if (ins.getKeyword() === 'ARG' && names.length === 0) names.push(text.trim());
      for (const name of names)
        expect({ instruction: ins.getKeyword(), name, secret: secretName.test(name) }).toMatchObject({
          secret: false,
        });
      expect(text).not.toMatch(secretValue);
    }
  });

  it('declares volumes for the disk cache and models, writable by the runtime user', () => {
    const volumes = keyword(runtime, 'VOLUME').flatMap((v) => execForm(v) ?? args(v).split(/\s+/));
    expect(volumes).toEqual(expect.arrayContaining(['/app/.cache', '/app/models']));
    const user = args(keyword(runtime, 'USER').at(-1)!);
    const chown = runs(runtime).find((r) => r.includes('chown'));
    expect(chown).toContain(`chown -R ${user}`);
    for (const dir of ['/app/.cache', '/app/models']) expect(chown).toContain(dir);
  });

  it('copies optimized_state.json when present without failing when absent', () => {
    const copy = (keyword(runtime, 'COPY') as Copy[]).find((c) => /optimized_state/.test(args(c)));
    expect(copy).toBeDefined();
    const sources = copy!
      .getArguments()
      .map((a) => a.getValue())
      .slice(0, -1);
    const optional = sources.find((s) => s.startsWith('optimized_state'))!;
    // A wildcard (BuildKit accepts one that matches nothing) next to a source that always exists (the legacy
    // builder needs at least one match).
    expect(optional).toMatch(/[*?[]/);
    expect(compilePattern(optional).regex.test('optimized_state.json')).toBe(true);
    expect(compilePattern(optional).regex.test('optimized_state.jsonx')).toBe(false);
    const always = sources.filter((s) => s !== optional);
    expect(always.length).toBeGreaterThan(0);
    // And .dockerignore lets the file through.
    expect(isExcluded(readDockerignore(ROOT), 'optimized_state.json')).toBe(false);
  });

  it('copies only files the build context has (nothing it needs is dockerignored)', () => {
    const context = listContext(ROOT);
    const present = (source: string) =>
      context.some((f) => f === source.replace(/\/$/, '') || f.startsWith(`${source.replace(/\/$/, '')}/`));
    for (const copy of dockerfile.getCOPYs()) {
      if (copy.getFromFlag()) continue;
      const sources = copy
        .getArguments()
        .map((a) => a.getValue())
        .slice(0, -1);
      for (const source of sources.filter((s) => !/[*?[]/.test(s))) {
        expect({ source, inContext: present(source) }).toEqual({ source, inContext: true });
      }
    }
  });
});

describe('.dockerignore', () => {
  const patterns = readDockerignore(ROOT);

  it.each([
    '.env',
    '.env.local',
    '.env.production',
    '.env.example',
    'node_modules/express/index.js',
    'src/node_modules/x.js',
    'dist/main.js',
    '.git/HEAD',
    'test/predict.e2e-spec.ts',
    'src/metrics/metrics.service.spec.ts',
    'coverage/lcov.info',
    '.cache/dspy/cache.sqlite',
    'models/tiny.gguf',
    'some/where/model.gguf',
    'deploy/kubernetes/secret.example.yaml',
    'npm-debug.log',
  ])('keeps %s out of the build context', (path) => {
    expect(isExcluded(patterns, path)).toBe(true);
  });

  it.each([
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    'tsconfig.build.json',
    'src/main.ts',
    'src/cluster.ts',
    'scripts/healthcheck.js',
    'optimized_state.json',
  ])('sends %s', (path) => {
    expect(isExcluded(patterns, path)).toBe(false);
  });

  it('follows Docker matching rules: anchored at the root, ** across directories, ! re-includes', () => {
    const rules = ['dist', '**/*.log', 'docs/*', '!docs/keep.md'].map(compilePattern);
    expect(isExcluded(rules, 'dist/a.js')).toBe(true);
    expect(isExcluded(rules, 'src/dist/a.js')).toBe(false);
    expect(isExcluded(rules, 'a.log')).toBe(true);
    expect(isExcluded(rules, 'a/b/c.log')).toBe(true);
    expect(isExcluded(rules, 'docs/x.md')).toBe(true);
    expect(isExcluded(rules, 'docs/keep.md')).toBe(false);
  });
});

describe('scripts/healthcheck.js', () => {
  let server: Server;
  let status = 200;
  let hang = false;

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (hang) return;
      res.writeHead(req.url === '/health/live' ? status : 404).end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  // Asynchronous: the server answering the probe lives in this process.
  const probe = (port: number, env: Record<string, string> = {}) =>
    new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        [repoPath('scripts', 'healthcheck.js')],
        {
          env: { PATH: process.env.PATH ?? '', HOST: '0.0.0.0', PORT: String(port), ...env },
          timeout: 10_000,
        },
        (_error, _stdout, stderr) => resolve({ status: child.exitCode, stderr }),
      );
    });
  const port = () => (server.address() as AddressInfo).port;

  it('exits 0 when /health/live answers 200 (HOST 0.0.0.0 probes loopback)', async () => {
    status = 200;
    expect((await probe(port())).status).toBe(0);
  });

  it('exits 1 when /health/live answers 503', async () => {
    status = 503;
    const result = await probe(port());
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/answered 503/);
  });

  it('exits 1 when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const unused = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    expect((await probe(unused)).status).toBe(1);
  });

  it('exits 1 within its timeout when the server hangs', async () => {
    hang = true;
    const started = Date.now();
    const result = await probe(port(), { HEALTHCHECK_TIMEOUT_MS: '300' });
    hang = false;
    expect(result.status).toBe(1);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
