#!/usr/bin/env node
/**
 * Runs test/support/fake-openai.ts (the OpenAI-compatible fake upstream of the e2e suites) as a process, for shell
 * scripts: prints `{"url": "http://127.0.0.1:PORT/v1"}` on one line once it listens and serves until SIGTERM/SIGINT.
 * The TypeScript is compiled in memory with @swc/core (a devDependency), so this needs the repository's
 * node_modules, not a build.
 *
 *   node scripts/fake-openai.js [--latency-ms N]
 */
'use strict';

const path = require('node:path');

const { loadTs } = require('./load-ts');

async function main() {
  const args = process.argv.slice(2);
  const latencyAt = args.indexOf('--latency-ms');
  const latencyMs = latencyAt >= 0 ? Number(args[latencyAt + 1]) : 0;
  if (!Number.isFinite(latencyMs) || latencyMs < 0) throw new Error('--latency-ms needs a number >= 0');

  const { startFakeOpenAI, dspyCompletionText } = loadTs(
    path.join(__dirname, '..', 'test', 'support', 'fake-openai.ts'),
  );
  const fake = await startFakeOpenAI({
    record: false,
    responder: (request) => ({ text: dspyCompletionText(request.body), latencyMs }),
  });
  process.stdout.write(`${JSON.stringify({ url: fake.url })}\n`);
  const stop = () => fake.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error) => {
  process.stderr.write(`fake-openai: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
