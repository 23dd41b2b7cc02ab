/**
 * DSPy `Evaluate` (evaluate/evaluate.py + utils/parallelizer.py): run the program on every example in parallel,
 * score each with `metric(example, prediction)` (no trace), and report `round(100·sum/len(devset), 2)`. A
 * failing example scores `failureScore` and stays in the denominator; at `maxErrors` failures the remaining
 * work is cancelled and `EvaluationCancelledError` is thrown.
 *
 * Not ported: DSPy resubmits a straggler that ran 120 s; here the LM's own timeout bounds every call.
 */
import type { LM } from '../clients/lm';
import { Example } from '../primitives/example';
import type { Module } from '../primitives/module';
import { Prediction } from '../primitives/prediction';
import { LMAbortedError } from '../utils/exceptions';
import { pyStr } from '../utils/python';
import { settings } from '../utils/settings';
import { mapConcurrent } from './concurrency';
import { Metric, metricName, metricScore, MetricValue } from './metric';
import { emitProgress, ProgressReporter } from './progress';

export interface EvaluateOptions {
  devset: readonly Example[];
  metric: Metric;
  /** Examples evaluated at once (DSPy `num_threads`, default 8). */
  numThreads?: number;
  /** Failures before the evaluation is cancelled (DSPy default 10). */
  maxErrors?: number;
  failureScore?: number;
  /** The LM the program runs with (DSPy: `dspy.settings.lm`); default the current settings. */
  lm?: LM | null;
  signal?: AbortSignal;
  progress?: ProgressReporter;
  /** A label for progress events. */
  label?: string;
  /**
   * Errors that abort the whole evaluation at once and are rethrown as they are (budget, cancellation, outage),
   * instead of scoring the example `failureScore`. Default: none, as in DSPy.
   */
  isFatal?: (error: unknown) => boolean;
}

export interface EvaluationRow {
  example: Example;
  /** The program's output; an empty Prediction when the example failed. */
  prediction: Prediction;
  /** The metric's value as returned, or `failureScore` when the example failed. */
  value: MetricValue;
  score: number;
  error?: unknown;
}

export interface EvaluationResult {
  /** 0–100, rounded to 2 decimals. */
  score: number;
  /** Sum of the per-example scores. */
  sum: number;
  errors: number;
  results: EvaluationRow[];
}

/** DSPy's `Exception("Execution cancelled due to errors or interruption.")`. */
export class EvaluationCancelledError extends Error {
  constructor(
    readonly errors: number,
    readonly lastError?: unknown,
  ) {
    super('Execution cancelled due to errors or interruption.');
    this.name = 'EvaluationCancelledError';
  }
}

/** Python's `round(x, 2)` for an evaluation's percentage (exact ties aside, which floats rarely hit). */
export function roundScore(x: number): number {
  return Math.round((x + Number.EPSILON) * 100) / 100;
}

export class Evaluate {
  constructor(readonly options: EvaluateOptions) {}

  async call(program: Module, overrides: Partial<EvaluateOptions> = {}): Promise<EvaluationResult> {
    return evaluate(program, { ...this.options, ...overrides });
  }
}

export async function evaluate(program: Module, options: EvaluateOptions): Promise<EvaluationResult> {
  const devset = options.devset;
  if (devset.length === 0) throw new RangeError('Evaluate needs a non-empty devset (DSPy divides by zero)');
  const maxErrors = options.maxErrors ?? 10;
  const failureScore = options.failureScore ?? 0;
  const label = options.label ?? 'evaluate';
  const cancel = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, cancel.signal]) : cancel.signal;
  let errors = 0;
  let done = 0;
  let sum = 0;
  let fatal: { error: unknown } | null = null;
  let lastError: unknown;

  emitProgress(options.progress, { type: 'eval:start', label, total: devset.length });
  const runOne = async (example: Example): Promise<EvaluationRow> => {
    try {
      const inputs = example.inputs().toDict();
      const run = () => program.call(inputs, { signal });
      const prediction = options.lm ? await settings.context({ lm: options.lm }, run) : await run();
      const value = await options.metric(example, prediction);
      return { example, prediction, value, score: metricScore(value) };
    } catch (error) {
      if (fatal || signal.aborted) throw error;
      if (options.isFatal?.(error)) {
        fatal = { error };
        cancel.abort();
        throw error;
      }
      errors++;
      lastError = error;
      if (errors >= maxErrors) cancel.abort();
      return { example, prediction: new Prediction(), value: failureScore, score: failureScore, error };
    }
  };

  const rows = await mapConcurrent(
    devset,
    options.numThreads ?? 8,
    async (example) => {
      try {
        const row = await runOne(example);
        done++;
        sum += row.score;
        emitProgress(options.progress, {
          type: 'eval:progress',
          label,
          done,
          total: devset.length,
          sum,
          errors,
        });
        return row;
      } catch {
        return undefined;
      }
    },
    () => signal.aborted,
  );

  if (fatal) throw (fatal as { error: unknown }).error;
  if (options.signal?.aborted) throw new LMAbortedError('the evaluation was cancelled');
  if (errors >= maxErrors || rows.some((r) => r === undefined)) {
    throw new EvaluationCancelledError(errors, lastError);
  }
  const results = rows as EvaluationRow[];
  const score = roundScore((100 * sum) / devset.length);
  emitProgress(options.progress, { type: 'eval:done', label, score, errors });
  return { score, sum, errors, results };
}

/** DSPy `truncate_cell`: more than 25 words become the first 25 and "...". */
function truncateCell(value: unknown): string {
  const text = pyStr(value);
  const words = text.split(/\s+/).filter(Boolean);
  return words.length > 25 ? `${words.slice(0, 25).join(' ')}...` : text;
}

/** DSPy `stylize_metric_name`'s cell: `✔️ [0.500]` for a float, `✔️ [True]` otherwise. */
function metricCell(value: MetricValue): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' && !Number.isInteger(value)) return `✔️ [${value.toFixed(3)}]`;
  if (typeof value === 'boolean') return `✔️ [${value ? 'True' : 'False'}]`;
  if (typeof value === 'object') return `✔️ [${metricScore(value).toFixed(3)}]`;
  return `✔️ [${value}]`;
}

/**
 * The rows of DSPy's results table: example and prediction fields (`example_`/`pred_` on a name clash), then a
 * column named after the metric; every cell truncated to 25 words.
 */
export function resultTable(result: EvaluationResult, metric: Metric | string): Record<string, string>[] {
  const column = typeof metric === 'string' ? metric : metricName(metric);
  return result.results.map(({ example, prediction, value }) => {
    const ex = example.toDict();
    const pred = prediction.toDict();
    const row: Record<string, string> = {};
    for (const [k, v] of Object.entries(ex)) row[k in pred ? `example_${k}` : k] = truncateCell(v);
    for (const [k, v] of Object.entries(pred)) row[k in ex ? `pred_${k}` : k] = truncateCell(v);
    row[column] = metricCell(value);
    return row;
  });
}

/** A plain-text rendering of `resultTable`; `limit` rows at most, then "... K more rows not displayed ...". */
export function formatResultTable(rows: Record<string, string>[], limit?: number): string {
  const shown = limit === undefined ? rows : rows.slice(0, limit);
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (s: string) => s.replace(/\s+/g, ' ');
  const width = columns.map((c) => Math.max(c.length, ...shown.map((r) => cell(r[c] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(width[i]))
      .join(' | ')
      .trimEnd();
  const out = [
    line(columns),
    width.map((w) => '-'.repeat(w)).join('-+-'),
    ...shown.map((r) => line(columns.map((c) => cell(r[c] ?? '')))),
  ];
  if (shown.length < rows.length) out.push(`... ${rows.length - shown.length} more rows not displayed ...`);
  return out.join('\n');
}

/** DSPy's progress text: `Average Metric: 2.00 / 3 (66.7%)`. */
export function averageMetricLine(sum: number, n: number): string {
  const pct = n ? (Math.round((1000 * sum) / n) / 10).toFixed(1) : '0.0';
  return `Average Metric: ${sum.toFixed(2)} / ${n} (${pct}%)`;
}
