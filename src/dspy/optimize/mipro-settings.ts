/**
 * MIPROv2's run settings as pure functions (mipro_optimizer_v2.py, optimizers.md §1.1-§1.3, §1.7): the `auto`
 * presets, the positional train/val split, the valset cap, minibatching, trial counts, the full-evaluation
 * schedule and the LM-call estimate. Unit-tested against the reference's tables.
 */
import type { Example } from '../primitives/example';
import type { Rng } from './rng';

export type AutoMode = 'light' | 'medium' | 'heavy';

/** `AUTO_RUN_SETTINGS`: `n` candidates and the valset cap per preset. */
export const AUTO_RUN_SETTINGS: Readonly<Record<AutoMode, { n: number; valSize: number }>> = {
  light: { n: 6, valSize: 100 },
  medium: { n: 12, valSize: 300 },
  heavy: { n: 18, valSize: 1000 },
};

/** `MIN_MINIBATCH_SIZE`: auto mode minibatches only a valset larger than this. */
export const MIN_MINIBATCH_SIZE = 50;
/** Demos bootstrapped to ground the proposer in zero-shot mode (`BOOTSTRAPPED_FEWSHOT_EXAMPLES_IN_CONTEXT`). */
export const BOOTSTRAPPED_FEWSHOT_EXAMPLES_IN_CONTEXT = 3;
export const LABELED_FEWSHOT_EXAMPLES_IN_CONTEXT = 0;

export class MiproConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MiproConfigError';
  }
}

export interface MiproSettingsInput {
  numPredictors: number;
  /** Trainset size as given. */
  trainsetSize: number;
  /** Valset size as given; undefined when none was given. */
  valsetSize?: number;
  auto?: AutoMode | null;
  numCandidates?: number | null;
  numTrials?: number | null;
  maxBootstrappedDemos?: number;
  maxLabeledDemos?: number;
  minibatch?: boolean;
  minibatchSize?: number;
  minibatchFullEvalSteps?: number;
  programAware?: boolean;
  dataAware?: boolean;
  viewDataBatchSize?: number;
}

export interface ResolvedMiproSettings {
  auto: AutoMode | null;
  numPredictors: number;
  zeroshot: boolean;
  maxBootstrappedDemos: number;
  maxLabeledDemos: number;
  /** Trainset after the split. */
  trainSize: number;
  /** Valset after the split and the cap. */
  valSize: number;
  /** Valset examples dropped by the preset's cap. */
  valDropped: number;
  /** Whether the valset was cut from the trainset (no valset given). */
  splitFromTrainset: boolean;
  numFewshotCandidates: number;
  numInstructCandidates: number;
  numTrials: number;
  minibatch: boolean;
  minibatchSize: number;
  minibatchFullEvalSteps: number;
  /** Trials including injected full evaluations (the progress total DSPy logs). */
  adjustedNumTrials: number;
  /** After which minibatch trials (1-based) a full evaluation runs. */
  fullEvalAfter: number[];
  programAware: boolean;
  dataAware: boolean;
  viewDataBatchSize: number;
  /** PORT: warnings DSPy does not give (tiny train or val sets). */
  warnings: string[];
}

/** `_set_num_trials_from_num_candidates`: `int(max(2·V·log2(n), 1.5·n))`, V doubled unless zero-shot. */
export function numTrialsFor(numPredictors: number, zeroshot: boolean, numCandidates: number): number {
  const vars = zeroshot ? numPredictors : numPredictors * 2;
  return Math.trunc(Math.max(2 * vars * Math.log2(numCandidates), 1.5 * numCandidates));
}

/** `_set_and_validate_datasets` sizes: with no valset the last `min(1000, max(1, int(0.8N)))` examples validate. */
export function splitSizes(trainsetSize: number, valsetSize?: number): { train: number; val: number } {
  if (trainsetSize === 0) throw new MiproConfigError('Trainset cannot be empty.');
  if (valsetSize === undefined) {
    if (trainsetSize < 2) {
      throw new MiproConfigError('Trainset must have at least 2 examples if no valset specified.');
    }
    const val = Math.min(1000, Math.max(1, Math.trunc(0.8 * trainsetSize)));
    return { train: trainsetSize - val, val };
  }
  if (valsetSize === 0) throw new MiproConfigError('Validation set must have at least 1 example.');
  return { train: trainsetSize, val: valsetSize };
}

/**
 * The full-evaluation schedule of a minibatch run. Optuna numbers the default trial 0 and every injected full
 * evaluation, so `trial_num` runs ahead of the minibatch count: light (10 trials, every 5) evaluates fully after
 * minibatch trials 5 and 10.
 */
export function fullEvalSchedule(numTrials: number, steps: number): { adjusted: number; after: number[] } {
  const adjusted = numTrials + Math.trunc(numTrials / steps) + 1 + (numTrials % steps !== 0 ? 1 : 0);
  const after: number[] = [];
  let studyTrials = 1;
  for (let i = 1; i <= numTrials; i++) {
    const trialNum = studyTrials + 1;
    studyTrials++;
    if (trialNum % (steps + 1) === 0 || trialNum === adjusted - 1) {
      after.push(i);
      studyTrials++;
    }
  }
  return { adjusted, after };
}

/** Argument checks and the `auto` preset, as MIPROv2.compile applies them. Pure: no data is touched. */
export function resolveMiproSettings(input: MiproSettingsInput): ResolvedMiproSettings {
  const auto = input.auto === undefined ? 'light' : input.auto;
  const maxBootstrappedDemos = input.maxBootstrappedDemos ?? 4;
  const maxLabeledDemos = input.maxLabeledDemos ?? 4;
  const zeroshot = maxBootstrappedDemos === 0 && maxLabeledDemos === 0;
  const numCandidates = input.numCandidates ?? null;
  let numTrials = input.numTrials ?? null;
  if (auto && !(auto in AUTO_RUN_SETTINGS)) {
    throw new MiproConfigError(`auto must be one of light, medium, heavy or null; got ${String(auto)}`);
  }
  if (auto === null && numCandidates !== null && numTrials === null) {
    throw new MiproConfigError(
      `If auto is None, num_trials must also be provided. Given num_candidates=${numCandidates}, we'd recommend setting num_trials to ~${numTrialsFor(input.numPredictors, zeroshot, numCandidates)}.`,
    );
  }
  if (auto === null && (numCandidates === null || numTrials === null)) {
    throw new MiproConfigError('If auto is None, num_candidates must also be provided.');
  }
  if (auto !== null && (numCandidates !== null || numTrials !== null)) {
    throw new MiproConfigError(
      'If auto is not None, num_candidates and num_trials cannot be set, since they would be overridden by the auto settings. Please either set auto to None, or do not specify num_candidates and num_trials.',
    );
  }

  const split = splitSizes(input.trainsetSize, input.valsetSize);
  let valSize = split.val;
  let valDropped = 0;
  let minibatch = input.minibatch ?? true;
  let numFewshotCandidates: number;
  let numInstructCandidates: number;
  if (auto) {
    const preset = AUTO_RUN_SETTINGS[auto];
    valSize = Math.min(split.val, preset.valSize);
    valDropped = split.val - valSize;
    minibatch = valSize > MIN_MINIBATCH_SIZE;
    numInstructCandidates = zeroshot ? preset.n : Math.trunc(preset.n * 0.5);
    numFewshotCandidates = preset.n;
    numTrials = numTrialsFor(input.numPredictors, zeroshot, preset.n);
  } else {
    numFewshotCandidates = numCandidates!;
    numInstructCandidates = numCandidates!;
  }
  const minibatchSize = input.minibatchSize ?? 35;
  const minibatchFullEvalSteps = input.minibatchFullEvalSteps ?? 5;
  if (minibatch && minibatchSize > valSize) {
    throw new MiproConfigError(
      `Minibatch size cannot exceed the size of the valset. Valset size: ${valSize}.`,
    );
  }
  const schedule = minibatch
    ? fullEvalSchedule(numTrials!, minibatchFullEvalSteps)
    : { adjusted: numTrials!, after: [] };

  const warnings: string[] = [];
  if (split.train < 4) {
    warnings.push(
      `the trainset has ${split.train} example(s) after the split: demo sets will be nearly identical`,
    );
  }
  if (valSize < 5) {
    warnings.push(
      `the valset has ${valSize} example(s): scores move in steps of ${(100 / valSize).toFixed(2)}`,
    );
  }
  return {
    auto,
    numPredictors: input.numPredictors,
    zeroshot,
    maxBootstrappedDemos,
    maxLabeledDemos,
    trainSize: split.train,
    valSize,
    valDropped,
    splitFromTrainset: input.valsetSize === undefined,
    numFewshotCandidates,
    numInstructCandidates,
    numTrials: numTrials!,
    minibatch,
    minibatchSize,
    minibatchFullEvalSteps,
    adjustedNumTrials: schedule.adjusted,
    fullEvalAfter: schedule.after,
    programAware: input.programAware ?? true,
    dataAware: input.dataAware ?? true,
    viewDataBatchSize: input.viewDataBatchSize ?? 10,
    warnings,
  };
}

/**
 * The datasets the run uses: the positional split when no valset is given, then (auto mode) `rng.sample` of the
 * valset up to the preset's cap, which shuffles it even under the cap; examples beyond the cap are dropped.
 */
export function splitDatasets(
  trainset: readonly Example[],
  valset: readonly Example[] | undefined,
  settings: ResolvedMiproSettings,
  rng: Rng,
): { trainset: Example[]; valset: Example[] } {
  let train = [...trainset];
  let val: Example[];
  if (valset === undefined) {
    const { train: t } = splitSizes(trainset.length);
    val = train.slice(t);
    train = train.slice(0, t);
  } else val = [...valset];
  if (settings.auto) val = rng.sample(val, Math.min(settings.valSize, val.length));
  return { trainset: train, valset: val };
}

export interface CostEstimate {
  /** Prompt-model calls: dataset summary plus 3 (or 1) per proposal. */
  promptLmCalls: number;
  /** Upper bound of teacher calls while bootstrapping. */
  bootstrapLmCalls: number;
  /** Program calls while evaluating (default program, trials, full evaluations). */
  evaluationLmCalls: number;
  /** Sum of the above, before the LM cache: an upper bound without adapter fallbacks. */
  lmCalls: number;
  metricCalls: number;
  /**
   * Calls needed before the first full evaluation ends (one teacher run, the proposals, the default program's
   * evaluation): a smaller call budget can never return a program.
   */
  minimumLmCalls: number;
}

/**
 * optimizers.md §1.7 for any preset: LM calls per predictor call of the program (a ChainOfThought is one), without
 * the cache's savings. N=4 light: 11 + 4 + 33 = 48.
 */
export function estimateMiproCost(s: ResolvedMiproSettings): CostEstimate {
  const continuation = s.dataAware
    ? Math.min(9, Math.max(0, Math.ceil((s.trainSize - s.viewDataBatchSize) / s.viewDataBatchSize)))
    : 0;
  const summary = s.dataAware ? 2 + continuation : 0;
  const proposals = Math.min(s.numInstructCandidates, s.numFewshotCandidates) * s.numPredictors;
  const promptLmCalls = summary + proposals * (s.programAware ? 3 : 1);
  const maxBoot = s.zeroshot ? BOOTSTRAPPED_FEWSHOT_EXAMPLES_IN_CONTEXT : s.maxBootstrappedDemos;
  const maxLabeled = s.zeroshot ? LABELED_FEWSHOT_EXAMPLES_IN_CONTEXT : s.maxLabeledDemos;
  const bootstrapSets = Math.max(0, s.numFewshotCandidates - (maxLabeled > 0 ? 2 : 1));
  const perSet = maxBoot > 0 ? s.trainSize : 0;
  const bootstrapLmCalls = bootstrapSets * perSet * s.numPredictors;
  const programCalls = s.minibatch
    ? s.valSize + s.numTrials * s.minibatchSize + s.fullEvalAfter.length * s.valSize
    : s.valSize * (1 + s.numTrials);
  const evaluationLmCalls = programCalls * s.numPredictors;
  return {
    promptLmCalls,
    bootstrapLmCalls,
    evaluationLmCalls,
    lmCalls: promptLmCalls + bootstrapLmCalls + evaluationLmCalls,
    metricCalls: bootstrapSets * perSet + programCalls,
    // The unshuffled bootstrap set always runs the teacher on at least one example.
    minimumLmCalls:
      promptLmCalls + (perSet > 0 && bootstrapSets > 0 ? s.numPredictors : 0) + s.valSize * s.numPredictors,
  };
}
