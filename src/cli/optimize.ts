/**
 * `npm run optimize -- [--trainset FILE] [--valset FILE] [--optimizer mipro|bootstrap|labeled]
 *   [--auto light|medium|heavy] [--metric seed|exact|f1] [--seed N] [--threads N] [--max-calls N] [--out FILE]`
 *
 * Optimizes the QA program offline and writes its state in DSPy's `save(..., save_program=False)` layout, for the
 * service to load through PROGRAM_STATE_PATH. The defaults reproduce the seed's optimize.py: its four training
 * examples, its metric, MIPROv2 light, `optimized_state.json`.
 */
import { access, constants, stat } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  BootstrapFewShot,
  createRng,
  evaluate,
  isRunEndingError,
  LabeledFewShot,
  LMUsageMeter,
  MIPROv2,
  MiproConfigError,
  resolveMiproSettings,
  settings,
  type AutoMode,
  type Example,
  type LM,
  type Metric,
  type Module,
} from '../dspy';
import { QAProgram } from '../program/qa.program';
import { DatasetError, loadDataset } from './optimize/datasets';
import { EXIT, processIO, type CliIO } from './optimize/io';
import { CliConfigError, createLm, priceFunction, readLmConfig } from './optimize/lm';
import { METRICS } from './optimize/metrics';
import { createProgressRenderer } from './optimize/progress';
import { chosenOf, formatReport, usageFields, type OptimizeReport } from './optimize/report';

export const DEFAULT_TRAINSET = resolve(__dirname, '../../data/seed-trainset.json');

export const OPTIMIZE_USAGE = `usage: npm run optimize -- [options]

Optimizes the QA program and writes its state (DSPy's save(..., save_program=False) JSON).

  --trainset FILE    training examples: a JSON array or JSON Lines (default: data/seed-trainset.json)
  --valset FILE      validation examples (default: MIPROv2 validates on the last 80% of the trainset,
                     BootstrapFewShot and LabeledFewShot are scored on the trainset)
  --optimizer NAME   mipro | bootstrap | labeled (default: mipro)
  --auto MODE        light | medium | heavy: the MIPROv2 preset (default: light)
  --metric NAME      seed | exact | f1 (default: seed, the seed's metric)
  --seed N           random seed (default: 9)
  --threads N        examples evaluated and LM requests in flight at once (default: 8)
  --max-calls N      LM call budget: stop with the best fully evaluated program (default: none)
  --out FILE         the state file to write, .json (default: optimized_state.json)
  -h, --help         show this text

The LM comes from the service's variables: DSPY_MODEL, OPENAI_API_KEY, OPENAI_BASE_URL, LM_TEMPERATURE,
LM_MAX_TOKENS, LM_TIMEOUT_MS, LM_MAX_RETRIES (and LM_PRICES_JSON for the cost).`;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface OptimizeArgs {
  trainset: string;
  valset: string | null;
  optimizer: 'mipro' | 'bootstrap' | 'labeled';
  auto: AutoMode;
  metric: keyof typeof METRICS;
  seed: number;
  threads: number;
  maxCalls: number | null;
  out: string;
}

function oneOf<T extends string>(
  flag: string,
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) {
    throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}; got "${value}"`);
  }
  return value as T;
}

function integer(flag: string, value: string | undefined, min: number): number | null {
  if (value === undefined) return null;
  if (!/^-?\d+$/.test(value.trim()) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`--${flag} must be an integer >= ${min}; got "${value}"`);
  }
  return Number(value);
}

/** Exactly the flags; anything else is a usage error. */
export function parseOptimizeArgs(argv: string[]): OptimizeArgs | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        trainset: { type: 'string' },
        valset: { type: 'string' },
        optimizer: { type: 'string' },
        auto: { type: 'string' },
        metric: { type: 'string' },
        seed: { type: 'string' },
        threads: { type: 'string' },
        'max-calls': { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  const str = (k: string) => values[k] as string | undefined;
  const optimizer = oneOf('optimizer', str('optimizer'), ['mipro', 'bootstrap', 'labeled'] as const, 'mipro');
  if (optimizer !== 'mipro' && str('auto') !== undefined) {
    throw new UsageError('--auto applies to --optimizer mipro only');
  }
  const out = str('out') ?? 'optimized_state.json';
  if (!out.endsWith('.json')) throw new UsageError(`--out must name a .json file; got "${out}"`);
  return {
    trainset: str('trainset') ?? DEFAULT_TRAINSET,
    valset: str('valset') ?? null,
    optimizer,
    auto: oneOf('auto', str('auto'), ['light', 'medium', 'heavy'] as const, 'light'),
    metric: oneOf('metric', str('metric'), ['seed', 'exact', 'f1'] as const, 'seed'),
    seed: integer('seed', str('seed'), -(2 ** 31)) ?? 9,
    threads: integer('threads', str('threads'), 1) ?? 8,
    maxCalls: integer('max-calls', str('max-calls'), 1),
    out,
  };
}

const display = (file: string) => {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith('..') ? rel : file;
};

async function checkWritable(out: string): Promise<void> {
  const dir = dirname(resolve(out));
  try {
    if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
    await access(dir, constants.W_OK);
  } catch (error) {
    throw new UsageError(`--out ${out}: cannot write to ${dir}: ${(error as Error).message}`);
  }
}

export interface OptimizeOutcome {
  code: number;
  report: OptimizeReport | null;
}

interface Loaded {
  args: OptimizeArgs;
  trainset: Example[];
  valset: Example[] | undefined;
  metric: Metric;
}

/** Everything that can fail on bad input, checked before the first LM call. */
async function prepare(args: OptimizeArgs): Promise<Loaded> {
  const choice = METRICS[args.metric];
  const inputKeys = new QAProgram().predict.predict.signature.inputFields.map((f) => f.name);
  const spec = { inputKeys, labelKeys: choice.labels, metricName: args.metric };
  const trainset = await loadDataset(display(args.trainset), spec);
  const valset = args.valset ? await loadDataset(display(args.valset), spec) : undefined;
  if (args.optimizer === 'mipro') {
    if (!valset && trainset.length < 2) {
      throw new DatasetError(
        `${display(args.trainset)}: MIPROv2 needs at least 2 examples when no --valset is given (it validates on the last 80%); found ${trainset.length}`,
      );
    }
    try {
      resolveMiproSettings({
        numPredictors: 1,
        trainsetSize: trainset.length,
        valsetSize: valset?.length,
        auto: args.auto,
      });
    } catch (error) {
      throw new DatasetError(`${display(args.trainset)}: ${(error as Error).message}`);
    }
  }
  await checkWritable(args.out);
  return { args, trainset, valset, metric: choice.metric };
}

function cutShortNote(reason: 'budget' | 'abort' | 'error', out: string, score: number): string {
  const why =
    reason === 'budget'
      ? 'the LM call budget was used up'
      : reason === 'abort'
        ? 'it was interrupted'
        : 'the LM failed';
  return `The run was cut short because ${why}: ${out} holds the best fully evaluated program so far (score ${score.toFixed(2)}).`;
}

async function runMipro(
  loaded: Loaded,
  lm: LM,
  meter: LMUsageMeter,
  io: CliIO,
  started: number,
): Promise<OptimizeOutcome> {
  const { args } = loaded;
  const progress = createProgressRenderer(io.stderr);
  let result;
  try {
    result = await new MIPROv2({
      metric: loaded.metric,
      taskLm: lm,
      auto: args.auto,
      seed: args.seed,
      numThreads: args.threads,
      meter,
      progress,
      signal: io.signal,
    }).compile(new QAProgram(), { trainset: loaded.trainset, valset: loaded.valset });
  } finally {
    progress.finish();
  }
  const stopped = result.stoppedReason ?? null;
  const report: OptimizeReport = {
    optimizer: 'mipro',
    auto: args.auto,
    seed: args.seed,
    metric: args.metric,
    model: lm.model,
    trainset: {
      file: display(args.trainset),
      examples: loaded.trainset.length,
      used: result.trainset.length,
    },
    valset: {
      file: args.valset ? display(args.valset) : null,
      examples: loaded.valset?.length ?? result.valset.length,
      used: result.valset.length,
    },
    baselineScore: result.defaultScore,
    optimizedScore: result.score,
    chosen: chosenOf(result.program),
    trials: result.trials.filter((t) => t.kind === 'trial').length,
    ...usageFields(meter.snapshot()),
    seconds: (performance.now() - started) / 1000,
    out: args.out,
    stoppedReason: stopped,
    note: stopped ? cutShortNote(stopped, args.out, result.score) : null,
  };
  await result.program.save(args.out);
  io.stdout.write(`${formatReport(report)}\n`);
  if (stopped === 'error') {
    io.stderr.write(`error: the LM failed mid-run: ${describe(result.error)}\n${report.note}\n`);
    return { code: EXIT.failed, report };
  }
  return { code: stopped === 'abort' ? EXIT.interrupted : EXIT.ok, report };
}

async function runFewShot(
  loaded: Loaded,
  lm: LM,
  meter: LMUsageMeter,
  io: CliIO,
  started: number,
): Promise<OptimizeOutcome> {
  const { args } = loaded;
  const task = meter.wrap(lm, 'task');
  const progress = createProgressRenderer(io.stderr);
  const devset = loaded.valset ?? loaded.trainset;
  const student = new QAProgram();
  const score = (program: Module, label: string) =>
    evaluate(program, {
      devset,
      metric: loaded.metric,
      numThreads: args.threads,
      lm: task,
      signal: io.signal,
      progress,
      label,
      isFatal: isRunEndingError,
    }).then((r) => r.score);
  try {
    io.stderr.write(
      `==> Compiling with ${args.optimizer === 'bootstrap' ? 'BootstrapFewShot' : 'LabeledFewShot'}\n`,
    );
    const compiled =
      args.optimizer === 'bootstrap'
        ? await settings.context({ lm: task }, () =>
            new BootstrapFewShot({
              metric: loaded.metric,
              maxBootstrappedDemos: 4,
              maxLabeledDemos: 16,
              signal: io.signal,
            }).compile(student, { trainset: loaded.trainset }),
          )
        : new LabeledFewShot({ k: 16 }).compile(student, {
            trainset: loaded.trainset,
            rng: createRng(args.seed),
          });
    io.stderr.write(
      `==> Evaluating on ${devset.length} ${loaded.valset ? 'validation' : 'training'} examples\n`,
    );
    const optimizedScore = await score(compiled, 'optimized program');
    await compiled.save(args.out);
    let baselineScore: number | null = null;
    let note: string | null = loaded.valset
      ? null
      : 'Scored on the trainset the demos came from (pass --valset for a held-out score).';
    try {
      baselineScore = await score(student, 'baseline program');
    } catch (error) {
      note = `The baseline could not be evaluated (${describe(error)}); ${args.out} was written.`;
    }
    progress.finish();
    const report: OptimizeReport = {
      optimizer: args.optimizer,
      auto: null,
      seed: args.seed,
      metric: args.metric,
      model: lm.model,
      trainset: {
        file: display(args.trainset),
        examples: loaded.trainset.length,
        used: loaded.trainset.length,
      },
      valset: {
        file: args.valset ? display(args.valset) : null,
        examples: loaded.valset?.length ?? 0,
        used: devset.length,
      },
      baselineScore,
      optimizedScore,
      chosen: chosenOf(compiled),
      trials: null,
      ...usageFields(meter.snapshot()),
      seconds: (performance.now() - started) / 1000,
      out: args.out,
      stoppedReason: null,
      note,
    };
    io.stdout.write(`${formatReport(report)}\n`);
    if (baselineScore === null) io.stderr.write(`error: ${note}\n`);
    return { code: baselineScore === null ? EXIT.failed : EXIT.ok, report };
  } finally {
    progress.finish();
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The command; resolves with the exit code and the report (null when nothing was written). */
export async function runOptimize(argv: string[], io: CliIO): Promise<OptimizeOutcome> {
  const started = performance.now();
  let loaded: Loaded;
  let lm: LM;
  let meter: LMUsageMeter;
  try {
    const args = parseOptimizeArgs(argv);
    if (args === 'help') {
      io.stdout.write(`${OPTIMIZE_USAGE}\n`);
      return { code: EXIT.ok, report: null };
    }
    loaded = await prepare(args);
    const cfg = readLmConfig();
    meter = new LMUsageMeter({
      limits: args.maxCalls === null ? {} : { maxLmCalls: args.maxCalls },
      concurrency: args.threads,
      priceOf: priceFunction(cfg),
    });
    lm = createLm(cfg);
  } catch (error) {
    if (error instanceof UsageError || error instanceof DatasetError || error instanceof CliConfigError) {
      io.stderr.write(`error: ${error.message}\n`);
      if (error instanceof UsageError) io.stderr.write('Run with --help for the options.\n');
      return { code: EXIT.usage, report: null };
    }
    throw error;
  }
  try {
    return loaded.args.optimizer === 'mipro'
      ? await runMipro(loaded, lm, meter, io, started)
      : await runFewShot(loaded, lm, meter, io, started);
  } catch (error) {
    if (error instanceof MiproConfigError) {
      io.stderr.write(`error: ${error.message}\n`);
      return { code: EXIT.usage, report: null };
    }
    // Every write happens after the last step that can fail (and is atomic), so nothing of this run is on disk.
    const aborted = io.signal?.aborted ?? false;
    io.stderr.write(
      `error: ${aborted ? 'interrupted' : 'the run failed'}: ${describe(error)}\n` +
        `Nothing was written to ${loaded.args.out}.\n`,
    );
    return { code: aborted ? EXIT.interrupted : EXIT.failed, report: null };
  }
}

if (require.main === module) {
  runOptimize(process.argv.slice(2), processIO()).then(
    ({ code }) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(EXIT.failed);
    },
  );
}
