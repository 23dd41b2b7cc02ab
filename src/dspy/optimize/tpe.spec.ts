import { createRng } from './rng';
import {
  bestCandidate,
  buildParzenEstimator,
  defaultGamma,
  defaultWeights,
  exhaustiveStrategy,
  mixtureLogPdf,
  randomStrategy,
  sampleMixture,
  splitObservations,
  tpeStrategy,
  type Observation,
} from './tpe';

const SPACE = { a: 2, b: 3 };

describe('TPE building blocks (Optuna semantics, hand-computed)', () => {
  it('gamma is min(ceil(0.1 n), 25)', () => {
    expect([1, 9, 10, 11, 20, 21, 250, 251, 1000].map(defaultGamma)).toEqual([1, 1, 1, 2, 2, 3, 25, 25, 25]);
  });

  it('weights are flat below 25 observations, then ramp up from 1/m for the oldest', () => {
    expect(defaultWeights(0)).toEqual([]);
    expect(defaultWeights(3)).toEqual([1, 1, 1]);
    expect(defaultWeights(24)).toEqual(new Array(24).fill(1));
    const w26 = defaultWeights(26);
    expect(w26).toHaveLength(26);
    expect(w26[0]).toBeCloseTo(1 / 26, 12);
    expect(w26.slice(1)).toEqual(new Array(25).fill(1));
    const w27 = defaultWeights(27);
    expect(w27.slice(0, 2)).toEqual([1 / 27, 1]);
  });

  it('splits by a stable descending sort and keeps each group in creation order', () => {
    const history: Observation[] = [10, 30, 30, 20].map((value, i) => ({
      params: { a: i % 2, b: 0 },
      value,
    }));
    const two = splitObservations(history, 2);
    expect(two.below.map((o) => o.value)).toEqual([30, 30]);
    expect(two.above.map((o) => o.value)).toEqual([10, 20]);
    // A tie for the single "good" slot goes to the earlier trial.
    const one = splitObservations(history, 1);
    expect(one.below).toEqual([history[1]]);
    expect(one.above).toEqual([history[0], history[2], history[3]]);
  });

  it('builds one kernel per observation plus the uniform prior: (w0 + [c = obs]) / (C·w0 + 1), w0 = 1/(m+1)', () => {
    // m = 1: w0 = 1/2. a (C=2) observed 0: [1.5, 0.5] / 2. b (C=3) observed 1: [0.5, 1.5, 0.5] / 2.5.
    const l = buildParzenEstimator([{ a: 0, b: 1 }], SPACE);
    expect(l.weights).toEqual([0.5, 0.5]);
    expect(l.kernels.a).toEqual([
      [0.75, 0.25],
      [0.5, 0.5],
    ]);
    expect(l.kernels.b[0].map((p) => +p.toFixed(12))).toEqual([0.2, 0.6, 0.2]);
    expect(l.kernels.b[1]).toEqual([1 / 3, 1 / 3, 1 / 3]);
    // l(a=0, b=1) = 0.5·0.75·0.6 + 0.5·0.5·(1/3) = 0.225 + 0.083333…
    expect(Math.exp(mixtureLogPdf(l, { a: 0, b: 1 }))).toBeCloseTo(0.308333333333, 10);
    // l(a=1, b=0) = 0.5·0.25·0.2 + 0.5·0.5·(1/3) = 0.025 + 0.083333…
    expect(Math.exp(mixtureLogPdf(l, { a: 1, b: 0 }))).toBeCloseTo(0.108333333333, 10);
  });

  it('scores log l − log g on a hand-computed two-observation "above" group', () => {
    // m = 2: w0 = 1/3, weights 1/3 each. a observed 1: [1/3, 4/3] / (5/3) = [0.2, 0.8].
    // b observed 0: [4/3, 1/3, 1/3] / 2; b observed 2: [1/3, 1/3, 4/3] / 2.
    const g = buildParzenEstimator(
      [
        { a: 1, b: 0 },
        { a: 1, b: 2 },
      ],
      SPACE,
    );
    expect(g.weights.map((w) => +w.toFixed(12))).toEqual([0.333333333333, 0.333333333333, 0.333333333333]);
    expect(g.kernels.a[0].map((p) => +p.toFixed(12))).toEqual([0.2, 0.8]);
    expect(g.kernels.b[0].map((p) => +p.toFixed(12))).toEqual([
      0.666666666667, 0.166666666667, 0.166666666667,
    ]);
    // g(a=0, b=1) = 1/3·(0.2·1/6) + 1/3·(0.2·1/6) + 1/3·(0.5·1/3) = 0.0777…
    expect(Math.exp(mixtureLogPdf(g, { a: 0, b: 1 }))).toBeCloseTo(0.077777777778, 10);
    const l = buildParzenEstimator([{ a: 0, b: 1 }], SPACE);
    const { params, scores } = bestCandidate(
      [
        { a: 1, b: 0 },
        { a: 0, b: 1 },
        { a: 0, b: 1 },
      ],
      l,
      g,
    );
    expect(scores[1]).toBeCloseTo(Math.log(0.308333333333 / 0.077777777778), 9);
    expect(scores[0]).toBeLessThan(scores[1]);
    expect(params).toEqual({ a: 0, b: 1 });
  });

  it('has a single uniform kernel without observations', () => {
    const empty = buildParzenEstimator([], SPACE);
    expect(empty.weights).toEqual([1]);
    expect(empty.kernels.a).toEqual([[0.5, 0.5]]);
    expect(Math.exp(mixtureLogPdf(empty, { a: 1, b: 2 }))).toBeCloseTo(1 / 6, 12);
  });

  it('lets the first candidate win a tie (numpy argmax)', () => {
    const l = buildParzenEstimator([], SPACE);
    const g = buildParzenEstimator([], SPACE);
    const { params } = bestCandidate(
      [
        { a: 1, b: 2 },
        { a: 0, b: 0 },
      ],
      l,
      g,
    );
    expect(params).toEqual({ a: 1, b: 2 });
  });

  it('samples a kernel by weight, then every parameter from that kernel', () => {
    const l = buildParzenEstimator([{ a: 0, b: 1 }], SPACE);
    const samples = sampleMixture(l, createRng(1), 4000);
    const share = samples.filter((s) => s.a === 0 && s.b === 1).length / samples.length;
    expect(share).toBeGreaterThan(0.28);
    expect(share).toBeLessThan(0.34);
  });
});

describe('tpeStrategy', () => {
  const history = (n: number): Observation[] =>
    Array.from({ length: n }, (_, i) => ({ params: { a: 0, b: i % 2 === 0 ? 0 : 1 }, value: i }));

  it('samples uniformly until 10 trials are complete (the default trial counts)', () => {
    const tpe = tpeStrategy();
    tpe.init(SPACE, createRng(7));
    for (const o of history(9)) tpe.tell(o);
    const random = randomStrategy();
    random.init(SPACE, createRng(7));
    // Below the startup count TPE is Optuna's RandomSampler: the same draws as the random strategy.
    for (let i = 0; i < 5; i++) expect(tpe.ask()).toEqual(random.ask());
  });

  it('from the 10th trial proposes the argmax of log l − log g over 24 draws from l', () => {
    const tpe = tpeStrategy();
    tpe.init(SPACE, createRng(7));
    // One standout trial at (a=1, b=2); the other nine sit at a=0 and never at b=2.
    const obs: Observation[] = [
      ...history(9).map((o) => ({ ...o, value: 1 })),
      { params: { a: 1, b: 2 }, value: 100 },
    ];
    for (const o of obs) tpe.tell(o);
    const proposed = tpe.ask();
    expect(proposed).toEqual({ a: 1, b: 2 });

    // The same computation by hand from the same stream: gamma(10) = 1, so l is built from the best trial only.
    const rng = createRng(7);
    const { below, above } = splitObservations(obs, defaultGamma(obs.length));
    expect(below).toEqual([obs[9]]);
    const l = buildParzenEstimator(
      below.map((o) => o.params),
      SPACE,
    );
    const g = buildParzenEstimator(
      above.map((o) => o.params),
      SPACE,
    );
    expect(bestCandidate(sampleMixture(l, rng, 24), l, g).params).toEqual(proposed);
  });

  it('is reproducible for a seed and rejects observations outside the space', () => {
    const run = () => {
      const tpe = tpeStrategy();
      tpe.init(SPACE, createRng(11));
      const asked = [];
      for (let i = 0; i < 15; i++) {
        const params = tpe.ask();
        asked.push(params);
        tpe.tell({ params, value: params.a * 10 + params.b });
      }
      return asked;
    };
    expect(run()).toEqual(run());
    const tpe = tpeStrategy();
    tpe.init(SPACE, createRng(1));
    expect(() => tpe.tell({ params: { a: 2, b: 0 }, value: 1 })).toThrow('outside 0..1');
  });

  it('converges on the best combination of a small space', () => {
    const tpe = tpeStrategy();
    tpe.init({ i: 3, d: 6 }, createRng(9));
    const value = (p: Record<string, number>) => (p.i === 2 && p.d === 4 ? 100 : p.i === 2 ? 50 : 0);
    let hits = 0;
    for (let t = 0; t < 40; t++) {
      const params = tpe.ask();
      if (t >= 20 && value(params) === 100) hits++;
      tpe.tell({ params, value: value(params) });
    }
    // Uniform sampling would hit (2, 4) once in 18 draws; TPE keeps coming back to it.
    expect(hits).toBeGreaterThanOrEqual(5);
  });
});

describe('exhaustiveStrategy', () => {
  it('visits every combination once, then samples at random', () => {
    const s = exhaustiveStrategy();
    s.init(SPACE, createRng(1));
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const p = s.ask();
      seen.add(`${p.a},${p.b}`);
      s.tell({ params: p, value: 0 });
    }
    expect(seen.size).toBe(6);
    const p = s.ask();
    expect(p.a).toBeLessThan(2);
  });
});
