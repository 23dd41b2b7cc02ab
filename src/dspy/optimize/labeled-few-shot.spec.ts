import { Predict } from '../predict/predict';
import { Example } from '../primitives/example';
import { Module } from '../primitives/module';
import type { Prediction } from '../primitives/prediction';
import { LabeledFewShot } from './labeled-few-shot';
import { createRng } from './rng';

class TwoStep extends Module {
  readonly draft = new Predict('question -> draft');
  readonly refine = new Predict('question, draft -> answer');
  async forward(inputs: Record<string, unknown>): Promise<Prediction> {
    const d = await this.draft.call({ question: inputs.question });
    return this.refine.call({ question: inputs.question, draft: d.draft });
  }
}

const trainset = Array.from({ length: 10 }, (_, i) =>
  new Example({ question: `q${i}`, answer: `a${i}` }).withInputs('question'),
);

describe('LabeledFewShot', () => {
  it('gives every predictor k raw examples, sampled, from one RNG stream (so samples differ)', () => {
    const student = new TwoStep();
    const compiled = new LabeledFewShot({ k: 3 }).compile(student, { trainset });
    const draft = compiled.draft.demos as Example[];
    const refine = compiled.refine.demos as Example[];
    expect(draft).toHaveLength(3);
    expect(refine).toHaveLength(3);
    expect(draft.every((d) => trainset.includes(d))).toBe(true);
    expect(draft.map((d) => d.question)).not.toEqual(refine.map((d) => d.question));
    // Raw demos: no augmented key, only the example's own fields.
    expect(draft[0].toDict()).not.toHaveProperty('augmented');
    // The same seed-0 stream every time.
    const again = new LabeledFewShot({ k: 3 }).compile(student, { trainset });
    expect((again.draft.demos as Example[]).map((d) => d.question)).toEqual(draft.map((d) => d.question));
    expect(student.draft.demos).toEqual([]);
  });

  it('takes the first k with sample=false, at most the trainset, 16 by default', () => {
    const first = new LabeledFewShot({ k: 2 }).compile(new TwoStep(), { trainset, sample: false });
    expect((first.draft.demos as Example[]).map((d) => d.question)).toEqual(['q0', 'q1']);
    const all = new LabeledFewShot().compile(new TwoStep(), { trainset });
    expect(all.draft.demos).toHaveLength(10);
    const seeded = new LabeledFewShot({ k: 2 }).compile(new TwoStep(), { trainset, rng: createRng(5) });
    expect(seeded.draft.demos).toHaveLength(2);
  });

  it('returns a reset copy for an empty trainset', () => {
    const student = new TwoStep();
    student.draft.demos = [{ question: 'old', draft: 'x' }];
    const compiled = new LabeledFewShot({ k: 2 }).compile(student, { trainset: [] });
    expect(compiled).not.toBe(student);
    expect(compiled.draft.demos).toEqual([]);
    expect(student.draft.demos).toHaveLength(1);
  });
});
