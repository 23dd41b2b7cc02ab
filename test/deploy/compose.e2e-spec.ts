/**
 * docker-compose.yml, parsed (yaml) and held to the deployment rules, then validated by Debian's docker-compose
 * (v1, offline) when it is installed. .ci/run installs it.
 */
import { execFile } from 'node:child_process';
import { parse } from 'yaml';
import {
  appVariables,
  drainSeconds,
  readRepoFile,
  repoPath,
  ROOT,
  SEED_VARIABLES,
  which,
} from './support/deploy';

type Service = Record<string, any>;
const compose = parse(readRepoFile('docker-compose.yml')) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const services = compose.services;
const api = services.api;

/** What compose puts in the container when nothing is exported: `${X:-default}` → default, `${X}` → ''. */
function resolved(value: unknown): string {
  return String(value ?? '').replace(
    /\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}/g,
    (_m, _name, fallback) => fallback ?? '',
  );
}

function environment(service: Service): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((line: string) => [line.split('=')[0], line.slice(line.indexOf('=') + 1)] as [string, string]),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
}

/** Compose durations: `90s`, `3m`, `1m30s`, `1h`. */
function seconds(duration: string): number {
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001, us: 1e-6 };
  let total = 0;
  for (const m of String(duration).matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us)/g))
    total += Number(m[1]) * units[m[2]];
  return total;
}

const pinnedImage = /^[a-z0-9./-]+:(\d+\.\d+\.\d+)[a-z0-9.-]*$|@sha256:[a-f0-9]{64}$/;

describe('docker-compose.yml', () => {
  const env = environment(api);

  it('has the API (built from this Dockerfile) and Redis', () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(['api', 'redis']));
    expect(api.build?.context ?? api.build).toBe('.');
  });

  it('pins every image to an exact version', () => {
    for (const [name, service] of Object.entries(services)) {
      if (!service.image) continue;
      expect({ name, image: service.image, pinned: pinnedImage.test(service.image) }).toMatchObject({
        pinned: true,
      });
    }
  });

  it('health-checks both services, the API with the image probe, and starts the API once Redis is healthy', () => {
    expect(api.healthcheck.test).toEqual(['CMD', 'node', 'scripts/healthcheck.js']);
    expect(services.redis.healthcheck.test).toEqual(['CMD', 'redis-cli', 'ping']);
    expect(api.depends_on.redis).toEqual({ condition: 'service_healthy' });
  });

  it('keeps the disk cache on a named volume at the directory CACHE_DIR lives in', () => {
    const mounts: string[] = api.volumes ?? [];
    const cache = mounts.find((m) => m.endsWith(':/app/.cache'));
    expect(cache).toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(cache!.split(':')[0]);
    expect(env.CACHE_DIR.startsWith('/app/.cache/')).toBe(true);
  });

  it("sets the seed's variables, only variables the app reads, and no literal secret", () => {
    expect(Object.keys(env)).toEqual(expect.arrayContaining(SEED_VARIABLES));
    const known = appVariables();
    for (const name of Object.keys(env))
      expect({ name, read: known.has(name) }).toEqual({ name, read: true });
    expect(env.OPENAI_API_KEY).toMatch(/^\$\{OPENAI_API_KEY(:-)?\}$/);
    expect(resolved(env.REDIS_URL)).toBe('redis://redis:6379');
    expect(resolved(env.PORT)).toBe('8000');
  });

  it('limits the resources of every always-on service', () => {
    for (const name of ['api', 'redis']) {
      const limits = services[name].deploy?.resources?.limits;
      expect({ name, cpus: !!limits?.cpus, memory: !!limits?.memory }).toEqual({
        name,
        cpus: true,
        memory: true,
      });
    }
  });

  it('gives the API a stop_grace_period longer than its drain', () => {
    const drain = drainSeconds(Object.fromEntries(Object.entries(env).map(([k, v]) => [k, resolved(v)])));
    expect(seconds(api.stop_grace_period)).toBeGreaterThan(drain);
  });

  it('offers a local-model profile the API can be pointed at without an API key', () => {
    const profiled = Object.entries(services).filter(([, s]) => (s.profiles ?? []).includes('local-model'));
    expect(profiled.length).toBeGreaterThan(0);
    // The always-on services never need a profiled one (compose refuses to start them otherwise).
    for (const [name, service] of Object.entries(services)) {
      if (service.profiles) continue;
      for (const dependency of Object.keys(service.depends_on ?? {})) {
        expect({ name, dependency, profiled: !!services[dependency]?.profiles }).toMatchObject({
          profiled: false,
        });
      }
    }
    // deploy/compose/local-model.env switches the API's substitutions to the profiled server.
    const overrides = Object.fromEntries(
      readRepoFile('deploy', 'compose', 'local-model.env')
        .split('\n')
        .filter((l) => /^[A-Z]/.test(l))
        .map((l) => [l.split('=')[0], l.slice(l.indexOf('=') + 1)]),
    );
    const server = new URL(overrides.OPENAI_BASE_URL);
    expect(profiled.map(([name]) => name)).toContain(server.hostname);
    expect(server.pathname).toBe('/v1');
    expect(overrides.DSPY_MODEL).toMatch(/^openai\//);
    expect(env.OPENAI_BASE_URL).toMatch(/^\$\{OPENAI_BASE_URL(:-)?\}$/);
    expect(env.DSPY_MODEL).toMatch(/^\$\{DSPY_MODEL:-openai\/gpt-4o-mini\}$/);
  });
});

const dockerCompose = which('docker-compose');
const validates = dockerCompose ? it : it.skip;

describe(`docker-compose config -q${dockerCompose ? '' : ' (SKIPPED: docker-compose is not on PATH; .ci/run installs it)'}`, () => {
  const run = (args: string[]) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile(
        dockerCompose!,
        args,
        // No OPENAI_API_KEY and friends from this shell: the file must validate on its own.
        {
          cwd: ROOT,
          env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
          timeout: 30_000,
        },
        (_error, _stdout, stderr) => resolve({ code: child.exitCode, stderr }),
      );
    });

  validates('accepts docker-compose.yml, without warnings about unset variables', async () => {
    const result = await run(['-f', 'docker-compose.yml', 'config', '-q']);
    expect(result).toEqual({ code: 0, stderr: '' });
  });

  validates('accepts it with the local-model profile and its env file', async () => {
    const result = await run([
      '--env-file',
      repoPath('deploy', 'compose', 'local-model.env'),
      '-f',
      'docker-compose.yml',
      '--profile',
      'local-model',
      'config',
      '-q',
    ]);
    expect(result).toEqual({ code: 0, stderr: '' });
  });
});
