import type { Usage } from '../clients/types';
import type { Signature } from '../signatures/signature';
import { Example } from './example';

/** DSPy `Completions`: every generation of each output field (`completions.answer[i]`). */
export class Completions {
  constructor(readonly items: Record<string, unknown>[]) {}

  get length(): number {
    return this.items.length;
  }

  field(name: string): unknown[] {
    return this.items.map((c) => c[name]);
  }
}

/** DSPy `Prediction`: the first completion's fields, all completions, and the usage of the call. */
export class Prediction extends Example {
  private _completions: Completions | null = null;
  private _lmUsage: Record<string, Usage> | null = null;

  static fromCompletions(completions: Record<string, unknown>[], signature?: Signature): Prediction {
    const first = completions[0] ?? {};
    const ordered = signature
      ? Object.fromEntries(
          signature.outputFields.filter((f) => f.name in first).map((f) => [f.name, first[f.name]]),
        )
      : { ...first };
    const pred = new Prediction(ordered);
    pred._completions = new Completions(completions);
    return pred;
  }

  get completions(): Completions {
    return this._completions ?? new Completions([this.toDict()]);
  }

  /** `{model: usage}` for the top-level call when usage tracking is on, else null (DSPy `get_lm_usage`). */
  getLmUsage(): Record<string, Usage> | null {
    return this._lmUsage;
  }

  setLmUsage(usage: Record<string, Usage> | null): void {
    this._lmUsage = usage;
  }
}
