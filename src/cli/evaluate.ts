/**
 * `npm run evaluate -- --state FILE --devset FILE`
 *
 * Loads a saved program state (ours or Python DSPy's) into the QA program and scores it on a devset with the
 * seed's metric, printing DSPy's results table and the 0–100 score.
 */
import { parseArgs } from 'node:util';
import {
  evaluate,
  formatResultTable,
  isRunEndingError,
  resultTable,
  StateLoadError,
  averageMetricLine,
} from '../dspy';
import { QAProgram } from '../program/qa.program';
import { DatasetError, loadDataset } from './optimize/datasets';
import { EXIT, processIO, type CliIO } from './optimize/io';
import { CliConfigError, createLm, readLmConfig } from './optimize/lm';
import { METRICS } from './optimize/metrics';
import { createProgressRenderer } from './optimize/progress';

export const EVALUATE_USAGE = `usage: npm run evaluate -- --state FILE --devset FILE

Scores a saved program state on a devset with the seed's metric.

  --state FILE    a program state saved by npm run optimize or by Python DSPy (save_program=False)
  --devset FILE   examples to score: a JSON array or JSON Lines
  -h, --help      show this text

The LM comes from the service's variables (DSPY_MODEL, OPENAI_API_KEY, OPENAI_BASE_URL, LM_*).`;

/** Rows of the results table printed in full; longer devsets are summarised. */
const TABLE_ROWS = 50;

export interface EvaluateOutcome {
  code: number;
  score: number | null;
}

function usage(io: CliIO, message: string): EvaluateOutcome {
  io.stderr.write(`error: ${message}\nRun with --help for the options.\n`);
  return { code: EXIT.usage, score: null };
}

export async function runEvaluate(argv: string[], io: CliIO): Promise<EvaluateOutcome> {
  let values: { state?: string; devset?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        state: { type: 'string' },
        devset: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    return usage(io, (error as Error).message);
  }
  if (values.help) {
    io.stdout.write(`${EVALUATE_USAGE}\n`);
    return { code: EXIT.ok, score: null };
  }
  if (!values.state) return usage(io, '--state FILE is required');
  if (!values.devset) return usage(io, '--devset FILE is required');

  const program = new QAProgram();
  let lm;
  let devset;
  try {
    await program.load(values.state);
    const inputKeys = program.predict.predict.signature.inputFields.map((f) => f.name);
    devset = await loadDataset(values.devset, { inputKeys });
    lm = createLm(readLmConfig());
  } catch (error) {
    if (error instanceof StateLoadError || error instanceof DatasetError || error instanceof CliConfigError) {
      io.stderr.write(`error: ${error.message}\n`);
      return { code: EXIT.usage, score: null };
    }
    throw error;
  }

  const metric = METRICS.seed.metric;
  const progress = createProgressRenderer(io.stderr);
  try {
    const result = await evaluate(program, {
      devset,
      metric,
      lm,
      signal: io.signal,
      progress,
      label: 'evaluating',
      isFatal: isRunEndingError,
    });
    progress.finish();
    io.stdout.write(`${formatResultTable(resultTable(result, 'seed_metric'), TABLE_ROWS)}\n\n`);
    io.stdout.write(`${averageMetricLine(result.sum, devset.length)}\n`);
    if (result.errors) io.stdout.write(`${result.errors} example(s) failed and scored 0\n`);
    io.stdout.write(`score: ${result.score.toFixed(2)}\n`);
    return { code: EXIT.ok, score: result.score };
  } catch (error) {
    progress.finish();
    io.stderr.write(
      `error: the evaluation failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return { code: io.signal?.aborted ? EXIT.interrupted : EXIT.failed, score: null };
  }
}

if (require.main === module) {
  runEvaluate(process.argv.slice(2), processIO()).then(
    ({ code }) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(EXIT.failed);
    },
  );
}
