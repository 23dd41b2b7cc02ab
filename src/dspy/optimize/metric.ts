/**
 * Metrics: DSPy's positional `metric(example, prediction, trace?)` form. `trace` is undefined under Evaluate
 * (and so under every MIPROv2 score) and the teacher's trace under BootstrapFewShot, so a metric can grade
 * during evaluation and be strict when deciding whether a demo is good enough (optimizers.md §4).
 */
import type { Example } from '../primitives/example';
import type { Prediction } from '../primitives/prediction';
import type { TraceEntry } from '../utils/settings';

/** bool, a number, or an object with a `score` (DSPy's `Prediction(score=…)`). */
export type MetricValue = boolean | number | { score: number } | null | undefined;

export type Metric = (
  example: Example,
  prediction: Prediction,
  trace?: TraceEntry[],
) => MetricValue | Promise<MetricValue>;

/** The number a metric value adds to an evaluation's sum (`float(value)`). */
export function metricScore(value: MetricValue): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number') return value;
  if (typeof value === 'object' && typeof value.score === 'number') return value.score;
  throw new TypeError(`metric returned ${String(value)}; expected a boolean, a number or {score}`);
}

/**
 * BootstrapFewShot's test: with a (truthy) threshold, `value >= threshold`; otherwise Python truthiness, so a
 * float 0.3 counts as a success (optimizers.md §2.2).
 */
export function metricPasses(value: MetricValue, threshold?: number | null): boolean {
  if (threshold) return metricScore(value) >= threshold;
  if (value !== null && typeof value === 'object') return metricScore(value) !== 0;
  return !!value;
}

/** A display name for a metric (the table's column), as DSPy uses the function's `__name__`. */
export function metricName(metric: Metric): string {
  return metric.name || 'metric';
}

// DSPy's answer metrics (dspy/evaluate/metrics.py over dsp/utils/metrics.py).

const PUNCTUATION = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');

/** DSPy `normalize_text`: NFD, lower case, no ASCII punctuation, no articles, single spaces. */
export function normalizeText(text: string): string {
  const lowered = text.normalize('NFD').toLowerCase();
  const noPunct = [...lowered].filter((ch) => !PUNCTUATION.has(ch)).join('');
  const noArticles = noPunct.replace(/\b(a|an|the)\b/gu, ' ');
  return noArticles.split(/\s+/u).filter(Boolean).join(' ');
}

/** DSPy `EM`: normalized exact match against any of the answers. */
export function exactMatch(prediction: string, answers: readonly string[]): boolean {
  const p = normalizeText(prediction);
  return answers.some((a) => normalizeText(a) === p);
}

function f1One(prediction: string, truth: string): number {
  const pred = normalizeText(prediction).split(' ').filter(Boolean);
  const gold = normalizeText(truth).split(' ').filter(Boolean);
  const counts = new Map<string, number>();
  for (const t of gold) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of pred) {
    const n = counts.get(t) ?? 0;
    if (n > 0) {
      same++;
      counts.set(t, n - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / pred.length;
  const recall = same / gold.length;
  return (2 * precision * recall) / (precision + recall);
}

/** DSPy `F1`: the best token-level F1 against any of the answers. */
export function tokenF1(prediction: string, answers: readonly string[]): number {
  return Math.max(0, ...answers.map((a) => f1One(prediction, a)));
}

function answersOf(example: Example): string[] {
  const answer: unknown = example.get('answer');
  return Array.isArray(answer) ? answer.map(String) : [String(answer ?? '')];
}

/** DSPy `answer_exact_match(example, pred, trace=None, frac=1.0)`: EM at frac 1, else F1 >= frac. */
export function answerExactMatch(
  example: Example,
  prediction: Prediction,
  _trace?: TraceEntry[],
  frac = 1.0,
): boolean {
  const answer = String(prediction.get('answer') ?? '');
  return frac >= 1.0 ? exactMatch(answer, answersOf(example)) : tokenF1(answer, answersOf(example)) >= frac;
}

/**
 * Token F1 of `answer`: the graded score under evaluation; under bootstrapping (a trace is given) a strict
 * `>= 0.66`, DSPy's SemanticF1 threshold, so only good traces become demos.
 */
export function answerF1(example: Example, prediction: Prediction, trace?: TraceEntry[]): number | boolean {
  const score = tokenF1(String(prediction.get('answer') ?? ''), answersOf(example));
  return trace === undefined ? score : score >= 0.66;
}
