import { Module } from '../primitives/module';
import type { Prediction } from '../primitives/prediction';
import { Signature } from '../signatures/signature';
import { Predict, PredictCallInputs } from './predict';

/** DSPy `ChainOfThought`: a Predict whose signature gains a leading `reasoning: str` output. */
export class ChainOfThought extends Module {
  readonly predict: Predict;

  constructor(signature: Signature | string, config: Record<string, unknown> = {}) {
    super();
    const base = typeof signature === 'string' ? Signature.parse(signature) : signature;
    this.predict = new Predict(base.prepend('reasoning', 'output', { desc: '${reasoning}' }), config);
  }

  forward(inputs: PredictCallInputs): Promise<Prediction> {
    return this.predict.call(inputs);
  }
}
