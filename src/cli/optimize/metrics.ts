/** The metrics the commands offer (`--metric`). */
import {
  answerExactMatch,
  answerF1,
  type Example,
  type Metric,
  type Prediction,
  type TraceEntry,
} from '../../dspy';

/**
 * The seed's metric (optimize.py): a detailed answer (over 50 characters) and key concepts (over 10). A
 * bool either way, so bootstrapping and evaluation judge alike.
 */
export function seedMetric(_example: Example, prediction: Prediction, _trace?: TraceEntry[]): boolean {
  const answer = prediction.get('answer');
  const concepts = prediction.get('key_concepts');
  return (
    typeof answer === 'string' && answer.length > 50 && typeof concepts === 'string' && concepts.length > 10
  );
}

export interface MetricChoice {
  metric: Metric;
  /** Fields each example must carry for the metric. */
  labels: string[];
  description: string;
}

export const METRICS: Readonly<Record<'seed' | 'exact' | 'f1', MetricChoice>> = {
  seed: {
    metric: seedMetric,
    labels: [],
    description: "the seed's: answer > 50 and key_concepts > 10 characters",
  },
  exact: {
    metric: (e, p, t) => answerExactMatch(e, p, t),
    labels: ['answer'],
    description: "DSPy's answer_exact_match on `answer`",
  },
  f1: {
    metric: answerF1,
    labels: ['answer'],
    description: 'token F1 of `answer` (>= 0.66 when bootstrapping)',
  },
};
