/**
 * Conformance runner: `npm run --silent conformance -- [DIR] [--only cat,…] [--skip-category cat,…]`.
 * Runs every case listed in DIR/INDEX.json (default ../shared/fixtures/dspy) against the runtime, prints one
 * line per failing case with a readable diff, and ends with `N passed, M failed`.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { runCase } from './conformance/cases';

interface Args {
  dir: string;
  only: Set<string> | null;
  skip: Set<string>;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    dir: resolve(__dirname, '../../../shared/fixtures/dspy'),
    only: null,
    skip: new Set(),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const list = () => new Set((argv[++i] ?? '').split(',').filter(Boolean));
    if (a === '--only') args.only = list();
    else if (a === '--skip-category' || a === '--skip') for (const c of list()) args.skip.add(c);
    else if (a === '--help' || a === '-h') {
      console.log('usage: conformance [DIR] [--only cat,…] [--skip-category cat,…]');
      process.exit(0);
    } else args.dir = resolve(a);
  }
  return args;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  let index: { categories: Record<string, { file: string }[]> };
  try {
    index = JSON.parse(readFileSync(resolve(args.dir, 'INDEX.json'), 'utf8')) as typeof index;
  } catch (e) {
    console.error(`cannot read ${resolve(args.dir, 'INDEX.json')}: ${(e as Error).message}`);
    return 2;
  }
  let passed = 0;
  let failed = 0;
  const skipped: string[] = [];
  for (const [category, cases] of Object.entries(index.categories)) {
    if ((args.only && !args.only.has(category)) || args.skip.has(category)) {
      skipped.push(`${category} (${cases.length})`);
      continue;
    }
    for (const { file } of cases) {
      let result: Awaited<ReturnType<typeof runCase>>;
      try {
        result = await runCase(category, { dir: args.dir, file });
      } catch (e) {
        result = [`crashed: ${(e as Error).stack ?? String(e)}`];
      }
      if (result === 'unhandled') {
        failed++;
        console.log(`FAIL ${file}: category "${category}" is not handled by this runner`);
      } else if (result.length) {
        failed++;
        console.log(`FAIL ${file}\n  ${result.join('\n  ')}`);
      } else passed++;
    }
  }
  if (skipped.length) console.log(`skipped categories: ${skipped.join(', ')}`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(2);
  },
);
