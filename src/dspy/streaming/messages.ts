/** A piece of one output field, as DSPy's `dspy.streaming.StreamResponse` yields it. */
export interface StreamResponse {
  /** The predictor's name in `named_predictors()` form, e.g. `predict.predict` for a ChainOfThought. */
  predictName: string;
  signatureFieldName: string;
  /** Raw text as the provider sent it (for the JSONAdapter: raw JSON text, escapes and quotes included). */
  chunk: string;
  isLastChunk: boolean;
}

/** DSPy's `dspy.streaming.StatusMessage`: progress text emitted by a status message provider. */
export class StatusMessage {
  constructor(readonly message: string) {}
}

export function isStreamResponse(value: unknown): value is StreamResponse {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as StreamResponse).signatureFieldName === 'string' &&
    typeof (value as StreamResponse).chunk === 'string' &&
    typeof (value as StreamResponse).isLastChunk === 'boolean'
  );
}
