import type { StreamResponse } from './messages';
import type { StreamAdapter, StreamListener } from './stream-listener';

export interface RouteOptions {
  /** The predictor making this LM call; only its listeners see the chunks (DSPy routes by `predict_id`). */
  predictName?: string;
  /** The adapter that formatted this call's prompt. */
  adapter?: StreamAdapter;
}

/**
 * The listener half of DSPy's `streamify` for one program run (one request): every streamed LM call's text chunks
 * go through the listeners of the calling predictor, in listener order, and `flush()` releases the held-back tails
 * before the final Prediction. Create one router, with fresh listeners, per request.
 */
export class StreamRouter {
  constructor(readonly listeners: readonly StreamListener[]) {}

  /** Routes one chunk's `delta.content`; a chunk may release text for several listeners at once. */
  receive(chunkText: string | null | undefined, options: RouteOptions = {}): StreamResponse[] {
    const out: StreamResponse[] = [];
    for (const listener of this.listenersFor(options.predictName)) {
      const response = listener.receive(chunkText, options.adapter ?? listener.adapter);
      if (response) out.push(response);
    }
    return out;
  }

  /** Routes one streamed LM call. Call it once per LM call of the run; the listeners carry state across calls. */
  async *route(
    chunks: AsyncIterable<string | null | undefined>,
    options: RouteOptions = {},
  ): AsyncGenerator<StreamResponse> {
    for await (const chunk of chunks) {
      yield* this.receive(chunk, options);
    }
  }

  /**
   * Releases every listener's held-back tail. DSPy does this once, when the program has returned and before the
   * Prediction is yielded, not after each LM call.
   */
  flush(): StreamResponse[] {
    const out: StreamResponse[] = [];
    for (const listener of this.listeners) {
      const response = listener.finalize();
      if (response) out.push(response);
    }
    return out;
  }

  /**
   * Whether the final Prediction goes into the stream. DSPy yields it even when told not to if there are no
   * listeners, a listener saw a cache hit, or no listener ever started (the client would get nothing otherwise).
   */
  shouldYieldPrediction(includeFinalPrediction: boolean): boolean {
    return (
      includeFinalPrediction ||
      this.listeners.length === 0 ||
      this.listeners.some((l) => l.cacheHit) ||
      !this.listeners.some((l) => l.streamStart)
    );
  }

  private listenersFor(predictName: string | undefined): readonly StreamListener[] {
    if (predictName === undefined) return this.listeners;
    return this.listeners.filter((l) => l.predictName === predictName);
  }
}

/** A predictor as `named_predictors()` lists it: its dotted name and its signature's output field names. */
export interface NamedPredictorFields {
  name: string;
  outputFields: readonly string[];
}

/**
 * DSPy's `find_predictor_for_stream_listeners`: fills `predictName` for listeners that have none, from the one
 * predictor whose signature outputs that field. Throws DSPy's errors when the field is ambiguous or unknown.
 */
export function resolvePredictNames(
  listeners: readonly StreamListener[],
  predictors: readonly NamedPredictorFields[],
): void {
  const owner = new Map<string, string | null>();
  for (const listener of listeners) {
    if (listener.predictName === undefined) owner.set(listener.signatureFieldName, null);
  }
  for (const { name, outputFields } of predictors) {
    for (const field of outputFields) {
      if (!owner.has(field)) continue;
      if (owner.get(field) !== null) {
        throw new Error(
          `Signature field ${field} is not unique in the program, cannot automatically determine which ` +
            'predictor to use for streaming. Please specify the predictor to listen to.',
        );
      }
      owner.set(field, name);
    }
  }
  for (const listener of listeners) {
    if (listener.predictName !== undefined) continue;
    const name = owner.get(listener.signatureFieldName);
    if (name === null || name === undefined) {
      throw new Error(
        `Signature field ${listener.signatureFieldName} is not a field of any predictor in the program, ` +
          'cannot automatically determine which predictor to use for streaming. Please verify your field name or ' +
          'specify the predictor to listen to.',
      );
    }
    listener.predictName = name;
  }
}
