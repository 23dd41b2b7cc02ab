/**
 * Search strategies over categorical choices (which instruction, which demo set per predictor). The default is
 * Optuna's `TPESampler(seed, multivariate=True)` as MIPROv2 configures it, written out for a categorical-only
 * space (optimizers.md §1.6): uniform random below `nStartupTrials` completed trials, then 24 joint samples from
 * the Parzen mixture of the best `gamma(n)` trials, keeping the one that maximises log l(x) − log g(x).
 */
import type { Rng } from './rng';

/** Parameter name → number of choices (indices 0..C−1). Key order is the order parameters are sampled in. */
export type CategoricalSpace = Readonly<Record<string, number>>;
export type TrialParams = Record<string, number>;

/** A completed trial: the default program, a search trial, or an injected full evaluation, in creation order. */
export interface Observation {
  params: TrialParams;
  value: number;
}

export interface SearchStrategy {
  readonly name: string;
  init(space: CategoricalSpace, rng: Rng): void;
  tell(observation: Observation): void;
  ask(): TrialParams;
}

export interface TpeOptions {
  /** Completed trials before TPE takes over from uniform sampling (Optuna 10; the default trial counts). */
  nStartupTrials?: number;
  /** Joint samples drawn from l(x) per suggestion (Optuna 24). */
  nEiCandidates?: number;
  /** How many of n trials form the "good" group (Optuna `min(ceil(0.1n), 25)`). */
  gamma?: (n: number) => number;
  /** Weight of the uniform prior kernel (Optuna 1.0). */
  priorWeight?: number;
  /** Joint (true, MIPROv2) or per-parameter (false) density estimation. */
  multivariate?: boolean;
  /** Mixture weights of m observations, oldest first (Optuna `default_weights`). */
  weights?: (m: number) => number[];
}

/** Optuna's `default_gamma`: the size of the good group for n completed trials. */
export function defaultGamma(n: number): number {
  return Math.min(Math.ceil(0.1 * n), 25);
}

/** numpy `linspace(start, stop, num)`. */
function linspace(start: number, stop: number, num: number): number[] {
  if (num <= 0) return [];
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  return Array.from({ length: num }, (_, i) => (i === num - 1 ? stop : start + i * step));
}

/** Optuna's `default_weights`: flat below 25 observations, then a ramp that down-weights the oldest. */
export function defaultWeights(m: number): number[] {
  if (m === 0) return [];
  if (m < 25) return new Array<number>(m).fill(1);
  return [...linspace(1 / m, 1, m - 25), ...new Array<number>(25).fill(1)];
}

/**
 * Split completed trials into the best `nBelow` (stable descending sort by value, so ties keep creation order)
 * and the rest; each group is returned in creation order, as Optuna sorts both by trial number.
 */
export function splitObservations(
  history: readonly Observation[],
  nBelow: number,
): { below: Observation[]; above: Observation[] } {
  const order = history.map((o, i) => ({ o, i }));
  const ranked = [...order].sort((x, y) => y.o.value - x.o.value || x.i - y.i);
  const belowIdx = new Set(ranked.slice(0, nBelow).map((r) => r.i));
  return {
    below: order.filter((r) => belowIdx.has(r.i)).map((r) => r.o),
    above: order.filter((r) => !belowIdx.has(r.i)).map((r) => r.o),
  };
}

/** A mixture of product-of-categorical kernels: `weights[k]`, and `kernels[param][k][choice]`. */
export interface CategoricalMixture {
  readonly weights: number[];
  readonly kernels: Record<string, number[][]>;
}

/**
 * Optuna's `_ParzenEstimator` for categorical parameters: one kernel per observation plus the uniform prior.
 * Observation kernel k puts `(w0 + [c = obs_k]) / (C·w0 + 1)` on choice c, with `w0 = priorWeight / (m+1)`.
 */
export function buildParzenEstimator(
  observations: readonly TrialParams[],
  space: CategoricalSpace,
  options: { priorWeight?: number; weights?: (m: number) => number[] } = {},
): CategoricalMixture {
  const priorWeight = options.priorWeight ?? 1;
  const m = observations.length;
  const kernels: Record<string, number[][]> = {};
  if (m === 0) {
    for (const [param, c] of Object.entries(space)) kernels[param] = [new Array<number>(c).fill(1 / c)];
    return { weights: [1], kernels };
  }
  const raw = [...(options.weights ?? defaultWeights)(m), priorWeight];
  const total = raw.reduce((s, w) => s + w, 0);
  const weights = raw.map((w) => w / total);
  const w0 = priorWeight / (m + 1);
  for (const [param, c] of Object.entries(space)) {
    const rows: number[][] = [];
    for (let k = 0; k <= m; k++) {
      const row = new Array<number>(c).fill(w0);
      if (k < m) row[observations[k][param]] += 1;
      const sum = row.reduce((s, v) => s + v, 0);
      rows.push(row.map((v) => v / sum));
    }
    kernels[param] = rows;
  }
  return { weights, kernels };
}

/** log Σ_k w_k Π_p kernels[p][k][x_p], computed with log-sum-exp. */
export function mixtureLogPdf(mixture: CategoricalMixture, x: TrialParams): number {
  const terms = mixture.weights.map((w, k) => {
    let log = Math.log(w);
    for (const [param, rows] of Object.entries(mixture.kernels)) log += Math.log(rows[k][x[param]]);
    return log;
  });
  const max = Math.max(...terms);
  if (max === -Infinity) return -Infinity;
  return max + Math.log(terms.reduce((s, t) => s + Math.exp(t - max), 0));
}

/** Draw joint samples: a kernel by weight, then each parameter from that kernel. */
export function sampleMixture(mixture: CategoricalMixture, rng: Rng, count: number): TrialParams[] {
  const out: TrialParams[] = [];
  for (let i = 0; i < count; i++) {
    const k = rng.weighted(mixture.weights);
    const x: TrialParams = {};
    for (const [param, rows] of Object.entries(mixture.kernels)) x[param] = rng.weighted(rows[k]);
    out.push(x);
  }
  return out;
}

/** The candidate with the largest log l(x) − log g(x); the first one wins ties (numpy `argmax`). */
export function bestCandidate(
  candidates: readonly TrialParams[],
  below: CategoricalMixture,
  above: CategoricalMixture,
): { params: TrialParams; scores: number[] } {
  const scores = candidates.map((c) => mixtureLogPdf(below, c) - mixtureLogPdf(above, c));
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
  return { params: candidates[best], scores };
}

function uniform(space: CategoricalSpace, rng: Rng): TrialParams {
  const x: TrialParams = {};
  for (const [param, c] of Object.entries(space)) x[param] = rng.below(c);
  return x;
}

function validate(space: CategoricalSpace, o: Observation): void {
  for (const [param, c] of Object.entries(space)) {
    const v = o.params[param];
    if (!Number.isInteger(v) || v < 0 || v >= c)
      throw new RangeError(`observation has ${param}=${String(v)}, outside 0..${c - 1}`);
  }
}

/** Optuna's TPE (multivariate by default) over categorical indices. */
export function tpeStrategy(options: TpeOptions = {}): SearchStrategy {
  const nStartup = options.nStartupTrials ?? 10;
  const nEi = options.nEiCandidates ?? 24;
  const gamma = options.gamma ?? defaultGamma;
  const multivariate = options.multivariate ?? true;
  const estimator = { priorWeight: options.priorWeight ?? 1, weights: options.weights };
  let space: CategoricalSpace = {};
  let rng: Rng | null = null;
  const history: Observation[] = [];

  const propose = (sub: CategoricalSpace, r: Rng): TrialParams => {
    const { below, above } = splitObservations(history, gamma(history.length));
    const pick = (o: Observation) => Object.fromEntries(Object.keys(sub).map((p) => [p, o.params[p]]));
    const l = buildParzenEstimator(below.map(pick), sub, estimator);
    const g = buildParzenEstimator(above.map(pick), sub, estimator);
    return bestCandidate(sampleMixture(l, r, nEi), l, g).params;
  };

  return {
    name: multivariate ? 'tpe' : 'tpe-univariate',
    init(s, r) {
      space = { ...s };
      rng = r;
      history.length = 0;
    },
    tell(o) {
      validate(space, o);
      history.push({ params: { ...o.params }, value: o.value });
    },
    ask() {
      if (!rng) throw new Error('tpeStrategy: init() first');
      if (history.length < nStartup) return uniform(space, rng);
      if (multivariate) return propose(space, rng);
      const x: TrialParams = {};
      for (const [param, c] of Object.entries(space)) Object.assign(x, propose({ [param]: c }, rng));
      return x;
    },
  };
}

/** Uniform random choices (Optuna's RandomSampler). */
export function randomStrategy(): SearchStrategy {
  let space: CategoricalSpace = {};
  let rng: Rng | null = null;
  return {
    name: 'random',
    init(s, r) {
      space = { ...s };
      rng = r;
    },
    tell() {},
    ask() {
      if (!rng) throw new Error('randomStrategy: init() first');
      return uniform(space, rng);
    },
  };
}

/** Each untried combination once, in order (for tiny spaces), then uniform random. */
export function exhaustiveStrategy(): SearchStrategy {
  let space: CategoricalSpace = {};
  let rng: Rng | null = null;
  const tried = new Set<string>();
  const key = (x: TrialParams) =>
    Object.keys(space)
      .map((p) => x[p])
      .join(',');
  return {
    name: 'exhaustive',
    init(s, r) {
      space = { ...s };
      rng = r;
      tried.clear();
    },
    tell(o) {
      tried.add(key(o.params));
    },
    ask() {
      if (!rng) throw new Error('exhaustiveStrategy: init() first');
      const params = Object.entries(space);
      const total = params.reduce((n, [, c]) => n * c, 1);
      for (let i = 0; i < total; i++) {
        const x: TrialParams = {};
        let rest = i;
        for (let j = params.length - 1; j >= 0; j--) {
          const [p, c] = params[j];
          x[p] = rest % c;
          rest = Math.floor(rest / c);
        }
        if (!tried.has(key(x))) return x;
      }
      return uniform(space, rng);
    },
  };
}
