/**
 * The image's build without Docker: scripts/build-like-image.sh performs the Dockerfile's steps in a clean temporary
 * directory (npm ci from the lock, build, prune) and starts the result against the fake upstream. Also lints the
 * shell scripts with shellcheck.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { DockerfileParser } from 'dockerfile-ast';
import { readRepoFile, repoPath, ROOT, which } from './support/deploy';

const SCRIPT = repoPath('scripts', 'build-like-image.sh');

function run(file: string, args: string[], timeoutMs: number) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(
      file,
      args,
      { cwd: ROOT, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (_error, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }),
    );
  });
}

const shellcheck = which('shellcheck');

describe('scripts/*.sh', () => {
  (shellcheck ? it : it.skip)(
    `pass shellcheck${shellcheck ? '' : ' (SKIPPED: shellcheck is not on PATH; .ci/run installs it)'}`,
    async () => {
      const scripts = readdirSync(repoPath('scripts'))
        .filter((f) => f.endsWith('.sh'))
        .map((f) => repoPath('scripts', f));
      expect(scripts.length).toBeGreaterThan(0);
      const result = await run(shellcheck!, scripts, 30_000);
      expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
    },
  );
});

describe('scripts/build-like-image.sh', () => {
  it('runs the commands the Dockerfile runs', () => {
    const script = readRepoFile('scripts', 'build-like-image.sh');
    const runs = DockerfileParser.parse(readRepoFile('Dockerfile'))
      .getInstructions()
      .filter((i) => i.getKeyword() === 'RUN')
      .flatMap((i) => (i.getArgumentsContent() ?? '').split('&&').map((c) => c.replace(/\s+/g, ' ').trim()))
      .filter((command) => /^npm /.test(command));
    expect(runs.length).toBeGreaterThanOrEqual(3);
    for (const command of runs) expect(script).toContain(command);
  });

  it('builds the image tree in a clean directory, then it starts, is live and answers /predict', async () => {
    const result = await run('bash', [SCRIPT], 300_000);
    if (result.code !== 0) {
      throw new Error(
        `build-like-image.sh exited ${result.code}:\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-4000)}`,
      );
    }
    expect(result.stdout).toMatch(/==> HEALTHCHECK: node scripts\/healthcheck\.js/);
    expect(result.stdout).toMatch(/200: answer "/);
    expect(result.stdout.trimEnd().split('\n').at(-1)).toBe('build-like-image: OK');
  }, 330_000);
});
