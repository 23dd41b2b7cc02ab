/**
 * DSPy `create_n_fewshot_demo_sets` (teleprompt/utils.py, optimizers.md §1.4): the demo-set candidates MIPROv2
 * searches over. Set 0 has no demos, set 1 labeled demos, set 2 an unshuffled bootstrap, and every further set a
 * bootstrap of a shuffled trainset with a random quota in `[minNumSamples, maxBootstrappedDemos]`.
 */
import type { Demo } from '../adapters/base-adapter';
import type { Example } from '../primitives/example';
import type { Module } from '../primitives/module';
import type { Settings } from '../utils/settings';
import { BootstrapFewShot } from './bootstrap-few-shot';
import { LabeledFewShot } from './labeled-few-shot';
import type { Metric } from './metric';
import { namedPredicts, resetCopy } from './program-utils';
import { emitProgress, type ProgressReporter } from './progress';
import type { Rng } from './rng';

export interface FewshotDemoSetOptions {
  /** Sets per predictor, the three fixed ones included. */
  numCandidateSets: number;
  trainset: readonly Example[];
  maxLabeledDemos: number;
  maxBootstrappedDemos: number;
  metric: Metric | null;
  metricThreshold?: number | null;
  teacherSettings?: Partial<Pick<Settings, 'lm' | 'adapter'>>;
  teacher?: Module | null;
  maxErrors?: number;
  maxRounds?: number;
  labeledSample?: boolean;
  minNumSamples?: number;
  includeNonBootstrapped?: boolean;
  /** Shared by every shuffled set, in order (DSPy passes MIPROv2's `self.rng`). */
  rng: Rng;
  isFatal?: (error: unknown) => boolean;
  signal?: AbortSignal;
  progress?: ProgressReporter;
}

/** `demoCandidates[predictor][set]` is the demo list of that set for that predictor. */
export async function createNFewshotDemoSets(
  student: Module,
  options: FewshotDemoSetOptions,
): Promise<Demo[][][]> {
  const predictorCount = namedPredicts(student).length;
  const candidates: Demo[][][] = Array.from({ length: predictorCount }, () => []);
  const includeNonBootstrapped = options.includeNonBootstrapped ?? true;
  const total = options.numCandidateSets;
  const bootstrapper = (maxBootstrappedDemos: number) =>
    new BootstrapFewShot({
      metric: options.metric,
      metricThreshold: options.metricThreshold,
      teacherSettings: options.teacherSettings,
      maxBootstrappedDemos,
      maxLabeledDemos: options.maxLabeledDemos,
      maxRounds: options.maxRounds ?? 1,
      maxErrors: options.maxErrors,
      isFatal: options.isFatal,
      signal: options.signal,
    });

  for (let seed = -3; seed < total - 3; seed++) {
    const trainset = [...options.trainset];
    let program: Module;
    if (seed === -3 && includeNonBootstrapped) {
      program = resetCopy(student);
    } else if (seed === -2 && options.maxLabeledDemos > 0 && includeNonBootstrapped) {
      program = new LabeledFewShot({ k: options.maxLabeledDemos }).compile(student, {
        trainset,
        sample: options.labeledSample ?? true,
      });
    } else if (seed === -1) {
      program = await bootstrapper(options.maxBootstrappedDemos).compile(student, {
        trainset,
        teacher: options.teacher,
      });
    } else {
      options.rng.shuffle(trainset);
      // PORT: the upper bound is clamped to the lower one, so maxBootstrappedDemos=0 no longer crashes (#9938).
      const size = options.rng.int(options.minNumSamples ?? 1, options.maxBootstrappedDemos);
      program = await bootstrapper(size).compile(student, { trainset, teacher: options.teacher });
    }
    const predictors = namedPredicts(program);
    predictors.forEach(([, p], i) => candidates[i].push(p.demos));
    emitProgress(options.progress, {
      type: 'bootstrap:set',
      index: seed + 4,
      total,
      demos: predictors.reduce((n, [, p]) => n + p.demos.length, 0),
    });
  }
  return candidates;
}
