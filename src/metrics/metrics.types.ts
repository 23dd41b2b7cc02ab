import type { Usage } from '../dspy';

/** One finished prediction (a /predict call, a completed stream, or one batch item). */
export interface PredictionRecord {
  route: 'predict' | 'stream' | 'batch';
  latencySeconds: number;
  /** DSPy-shaped `{model: usage}` billed for this prediction (`{}` on a cache hit). */
  usage: Record<string, Usage>;
  costUsd: number | null;
  cached: boolean;
}

/** A failed prediction, by the error's code (`rate_limit`, `timeout`, `adapter_parse_error`, …). */
export interface PredictionErrorRecord {
  route: 'predict' | 'stream' | 'batch';
  code: string;
  model: string;
}
