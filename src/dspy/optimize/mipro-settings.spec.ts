import { Example } from '../primitives/example';
import {
  estimateMiproCost,
  fullEvalSchedule,
  MiproConfigError,
  numTrialsFor,
  resolveMiproSettings,
  splitDatasets,
  splitSizes,
  type AutoMode,
} from './mipro-settings';
import { createRng } from './rng';

describe('MIPROv2 train/val split and the light valset cap (optimizers.md §1.3)', () => {
  // N (trainset only) → train T, val V after the light cap, minibatch.
  const TABLE: [number, number, number, boolean][] = [
    [2, 1, 1, false],
    [3, 1, 2, false],
    [4, 1, 3, false],
    [5, 1, 4, false],
    [10, 2, 8, false],
    [20, 4, 16, false],
    [63, 13, 50, false],
    [64, 13, 51, true],
    [125, 25, 100, true],
    [200, 40, 100, true],
  ];
  it.each(TABLE)('N=%i → T=%i, V=%i, minibatch=%s', (n, train, val, minibatch) => {
    const s = resolveMiproSettings({ numPredictors: 1, trainsetSize: n });
    expect([s.trainSize, s.valSize, s.minibatch]).toEqual([train, val, minibatch]);
  });

  it('drops the valset beyond the cap (N=200 light: 60 dropped), it never moves it to the trainset', () => {
    const s = resolveMiproSettings({ numPredictors: 1, trainsetSize: 200 });
    expect(s.valDropped).toBe(60);
    expect(s.trainSize).toBe(40);
    expect(resolveMiproSettings({ numPredictors: 1, trainsetSize: 200, auto: 'medium' }).valDropped).toBe(0);
  });

  it('caps the split at 1000 validation examples', () => {
    expect(splitSizes(2000)).toEqual({ train: 1000, val: 1000 });
    expect(splitSizes(5, 7)).toEqual({ train: 5, val: 7 });
  });

  it('the seed (N=4, light): T=1, V=3, 6 demo sets, 3 instructions, 10 trials, no minibatch, and warnings', () => {
    const s = resolveMiproSettings({ numPredictors: 1, trainsetSize: 4 });
    expect(s).toMatchObject({
      trainSize: 1,
      valSize: 3,
      numFewshotCandidates: 6,
      numInstructCandidates: 3,
      numTrials: 10,
      minibatch: false,
      adjustedNumTrials: 10,
      fullEvalAfter: [],
    });
    expect(s.warnings).toHaveLength(2);
  });

  it('splits positionally (the last 80% validate) and then shuffles the valset with the run seed', () => {
    const data = ['a', 'b', 'c', 'd'].map((q) => new Example({ question: q }).withInputs('question'));
    const s = resolveMiproSettings({ numPredictors: 1, trainsetSize: 4 });
    const one = splitDatasets(data, undefined, s, createRng(9).fork('split'));
    expect(one.trainset.map((e) => e.question)).toEqual(['a']);
    expect(one.valset.map((e) => e.question).sort()).toEqual(['b', 'c', 'd']);
    const two = splitDatasets(data, undefined, s, createRng(9).fork('split'));
    expect(two.valset.map((e) => e.question)).toEqual(one.valset.map((e) => e.question));
    // A given valset is used as given (sampled under the cap), the trainset untouched.
    const given = splitDatasets(
      data,
      data.slice(0, 2),
      resolveMiproSettings({ numPredictors: 1, trainsetSize: 4, valsetSize: 2 }),
      createRng(1),
    );
    expect(given.trainset).toHaveLength(4);
    expect(given.valset.map((e) => e.question).sort()).toEqual(['a', 'b']);
  });
});

describe('MIPROv2 auto presets (optimizers.md §1.2)', () => {
  // preset → [fewshot candidates, instruct candidates, trials for 1, 2, 3 predictors], then zero-shot instruct / trials (1 predictor).
  const PRESETS: [AutoMode, number, number, number[], number, number][] = [
    ['light', 6, 3, [10, 20, 31], 6, 9],
    ['medium', 12, 6, [18, 28, 43], 12, 18],
    ['heavy', 18, 9, [27, 33, 50], 18, 27],
  ];
  it.each(PRESETS)(
    '%s: %i demo sets, %i instructions, trials %j; zero-shot %i instructions, %i trials',
    (auto, fewshot, instruct, trials, zsInstruct, zsTrials) => {
      trials.forEach((numTrials, i) => {
        const s = resolveMiproSettings({ numPredictors: i + 1, trainsetSize: 100, auto });
        expect([s.numFewshotCandidates, s.numInstructCandidates, s.numTrials]).toEqual([
          fewshot,
          instruct,
          numTrials,
        ]);
        expect(s.zeroshot).toBe(false);
      });
      const zs = resolveMiproSettings({
        numPredictors: 1,
        trainsetSize: 100,
        auto,
        maxBootstrappedDemos: 0,
        maxLabeledDemos: 0,
      });
      expect([zs.zeroshot, zs.numInstructCandidates, zs.numTrials]).toEqual([true, zsInstruct, zsTrials]);
    },
  );

  it('computes trials as int(max(2·V·log2 n, 1.5 n)) with V doubled unless zero-shot', () => {
    expect(numTrialsFor(1, false, 6)).toBe(10);
    expect(numTrialsFor(1, true, 6)).toBe(9);
    expect(numTrialsFor(3, false, 18)).toBe(50);
  });

  it('leaves the caller a minibatch only above 50 validation examples, overriding minibatch=false', () => {
    expect(resolveMiproSettings({ numPredictors: 1, trainsetSize: 300, minibatch: false }).minibatch).toBe(
      true,
    );
    expect(resolveMiproSettings({ numPredictors: 1, trainsetSize: 60, minibatch: true }).minibatch).toBe(
      false,
    );
  });

  it('rejects the argument combinations DSPy rejects', () => {
    const base = { numPredictors: 1, trainsetSize: 10 };
    expect(() => resolveMiproSettings({ ...base, trainsetSize: 0 })).toThrow('Trainset cannot be empty.');
    expect(() => resolveMiproSettings({ ...base, trainsetSize: 1 })).toThrow(
      'Trainset must have at least 2 examples if no valset specified.',
    );
    expect(() => resolveMiproSettings({ ...base, numTrials: 5 })).toThrow('If auto is not None');
    expect(() => resolveMiproSettings({ ...base, auto: null, numCandidates: 4 })).toThrow(
      "we'd recommend setting num_trials to ~",
    );
    expect(() => resolveMiproSettings({ ...base, auto: null })).toThrow(MiproConfigError);
    expect(() => resolveMiproSettings({ ...base, auto: null, numCandidates: 4, numTrials: 8 })).toThrow(
      'Minibatch size cannot exceed the size of the valset. Valset size: 8.',
    );
    const manual = resolveMiproSettings({
      ...base,
      auto: null,
      numCandidates: 4,
      numTrials: 8,
      minibatch: false,
    });
    expect([manual.numFewshotCandidates, manual.numInstructCandidates, manual.numTrials]).toEqual([4, 4, 8]);
  });
});

describe('full evaluations of a minibatch run', () => {
  it('light: 10 trials, 13 Optuna trials, full evaluations after minibatch trials 5 and 10', () => {
    expect(fullEvalSchedule(10, 5)).toEqual({ adjusted: 13, after: [5, 10] });
  });
  it('medium: 4 full evaluations; heavy: 6', () => {
    expect(fullEvalSchedule(18, 5)).toEqual({ adjusted: 23, after: [5, 10, 15, 18] });
    expect(fullEvalSchedule(27, 5)).toEqual({ adjusted: 34, after: [5, 10, 15, 20, 25, 27] });
  });
  it('is part of the resolved settings of a minibatch run', () => {
    const s = resolveMiproSettings({ numPredictors: 1, trainsetSize: 200 });
    expect(s.adjustedNumTrials).toBe(13);
    expect(s.fullEvalAfter).toEqual([5, 10]);
  });
});

describe('LM-call estimate (optimizers.md §1.7)', () => {
  it('N=4 light: P=11, B<=4, E=33, 48 calls and 37 metric calls', () => {
    const e = estimateMiproCost(resolveMiproSettings({ numPredictors: 1, trainsetSize: 4 }));
    expect(e).toMatchObject({
      promptLmCalls: 11,
      bootstrapLmCalls: 4,
      evaluationLmCalls: 33,
      lmCalls: 48,
      metricCalls: 37,
      minimumLmCalls: 15,
    });
  });
  it('N=10: 11 + 8 + 88; N=125: P=13 and E=650', () => {
    const ten = estimateMiproCost(resolveMiproSettings({ numPredictors: 1, trainsetSize: 10 }));
    expect([ten.promptLmCalls, ten.bootstrapLmCalls, ten.evaluationLmCalls]).toEqual([11, 8, 88]);
    const big = estimateMiproCost(resolveMiproSettings({ numPredictors: 1, trainsetSize: 125 }));
    expect([big.promptLmCalls, big.evaluationLmCalls]).toEqual([13, 650]);
  });
  it('counts 1 prompt call per proposal when not program-aware', () => {
    const e = estimateMiproCost(
      resolveMiproSettings({ numPredictors: 1, trainsetSize: 4, programAware: false }),
    );
    expect(e.promptLmCalls).toBe(5);
  });
});
