/**
 * DSPy `LabeledFewShot` (teleprompt/vanilla.py): every predictor of a reset copy of the student gets `k` raw
 * training examples as demos, a random sample by default. One RNG (seed 0) runs across the predictors, so each
 * gets a different sample. Demos are the Examples themselves: no `augmented` key, no intermediate fields.
 */
import type { Example } from '../primitives/example';
import type { Module } from '../primitives/module';
import { namedPredicts, resetCopy } from './program-utils';
import { createRng, Rng } from './rng';

export interface LabeledFewShotOptions {
  /** Demos per predictor (DSPy default 16). */
  k?: number;
}

export interface LabeledFewShotCompileOptions {
  trainset: readonly Example[];
  /** Sample randomly (default) or take the first k. */
  sample?: boolean;
  /** The sampling RNG; DSPy uses `random.Random(0)`. */
  rng?: Rng;
}

export class LabeledFewShot {
  readonly k: number;

  constructor(options: LabeledFewShotOptions = {}) {
    this.k = options.k ?? 16;
  }

  compile<P extends Module>(student: P, options: LabeledFewShotCompileOptions): P {
    const program = resetCopy(student);
    const trainset = options.trainset;
    if (trainset.length === 0) return program;
    const rng = options.rng ?? createRng(0);
    const n = Math.min(this.k, trainset.length);
    for (const [, predictor] of namedPredicts(program)) {
      predictor.demos = options.sample === false ? trainset.slice(0, n) : rng.sample(trainset, n);
    }
    return program;
  }
}
