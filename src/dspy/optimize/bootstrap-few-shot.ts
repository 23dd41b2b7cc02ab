/**
 * DSPy `BootstrapFewShot` (teleprompt/bootstrap.py, optimizers.md §2.2): run a teacher (by default the student
 * with labeled demos) over the trainset in order; every example whose prediction passes the metric turns the
 * teacher's trace into demos, one per predictor that ran (`augmented: true` first, then its inputs and outputs,
 * CoT reasoning included). Each predictor then gets up to `maxBootstrappedDemos` of those, topped up with raw
 * examples that were not bootstrapped up to `maxLabeledDemos`.
 */
import type { Demo } from '../adapters/base-adapter';
import type { LM } from '../clients/lm';
import type { Predict } from '../predict/predict';
import { Example } from '../primitives/example';
import type { Module } from '../primitives/module';
import type { Prediction } from '../primitives/prediction';
import { settings, type Settings, type TraceEntry } from '../utils/settings';
import { isRunEndingError } from './budget';
import { LabeledFewShot } from './labeled-few-shot';
import { Metric, metricPasses } from './metric';
import { deepcopyProgram, exampleEquals, lmWithRollout, namedPredicts, resetCopy } from './program-utils';
import { createRng, hashString } from './rng';

export interface BootstrapFewShotOptions {
  /** No metric: every teacher run succeeds. */
  metric?: Metric | null;
  /** Success is `metric >= threshold` when set and non-zero (a threshold of 0 is ignored, as in DSPy). */
  metricThreshold?: number | null;
  /** Settings the teacher runs under, e.g. `{ lm: strongerLm }` (DSPy `teacher_settings`). */
  teacherSettings?: Partial<Pick<Settings, 'lm' | 'adapter'>>;
  maxBootstrappedDemos?: number;
  maxLabeledDemos?: number;
  maxRounds?: number;
  /** Failed teacher runs tolerated; the next one is rethrown (DSPy default 10). */
  maxErrors?: number;
  /** Errors rethrown at once instead of counting as a failed example (default: `isRunEndingError`). */
  isFatal?: (error: unknown) => boolean;
  signal?: AbortSignal;
}

export interface BootstrapFewShotCompileOptions {
  trainset: readonly Example[];
  teacher?: Module | null;
}

/** What the last `compile` did. */
export interface BootstrapStats {
  bootstrapped: number;
  attempts: number;
  errors: number;
  /** Examples tried, whether they passed or not. */
  examplesTried: number;
}

export class BootstrapFewShot {
  readonly metric: Metric | null;
  readonly metricThreshold: number | null;
  readonly teacherSettings: Partial<Pick<Settings, 'lm' | 'adapter'>>;
  readonly maxBootstrappedDemos: number;
  readonly maxLabeledDemos: number;
  readonly maxRounds: number;
  readonly maxErrors: number;
  private readonly isFatal: (error: unknown) => boolean;
  private readonly signal: AbortSignal | undefined;
  stats: BootstrapStats = { bootstrapped: 0, attempts: 0, errors: 0, examplesTried: 0 };

  constructor(options: BootstrapFewShotOptions = {}) {
    this.metric = options.metric ?? null;
    this.metricThreshold = options.metricThreshold ?? null;
    this.teacherSettings = Object.fromEntries(
      Object.entries(options.teacherSettings ?? {}).filter(([, v]) => v !== undefined),
    );
    this.maxBootstrappedDemos = options.maxBootstrappedDemos ?? 4;
    this.maxLabeledDemos = options.maxLabeledDemos ?? 16;
    this.maxRounds = options.maxRounds ?? 1;
    this.maxErrors = options.maxErrors ?? 10;
    this.isFatal = options.isFatal ?? isRunEndingError;
    this.signal = options.signal;
  }

  async compile<P extends Module>(student: P, options: BootstrapFewShotCompileOptions): Promise<P> {
    const trainset = options.trainset;
    const compiledStudent = resetCopy(student);
    if (compiledStudent.compiled) throw new Error('Student must be uncompiled.');
    let teacher = deepcopyProgram(options.teacher ?? student);
    if (this.maxLabeledDemos && !teacher.compiled) {
      teacher = new LabeledFewShot({ k: this.maxLabeledDemos }).compile(teacher, { trainset });
    }

    const studentPredictors = namedPredicts(compiledStudent);
    const teacherPredictors = namedPredicts(teacher);
    if (studentPredictors.length !== teacherPredictors.length) {
      throw new Error('Student and teacher must have the same number of predictors.');
    }
    const predictorNames = new Map<Predict, string>();
    studentPredictors.forEach(([name, p], i) => {
      const [teacherName, tp] = teacherPredictors[i];
      if (name !== teacherName) throw new Error('Student and teacher must have the same program structure.');
      if (!p.signature.equals(tp.signature)) {
        throw new Error(
          `Student and teacher must have the same signatures. ${p.signature.toString()} != ${tp.signature.toString()}`,
        );
      }
      if (p === tp) throw new Error('Student and teacher must be different objects.');
      predictorNames.set(p, name);
      predictorNames.set(tp, teacherName);
    });

    // Phase 1: walk the trainset in order until enough examples bootstrapped.
    const name2traces = new Map<string, Example[]>(studentPredictors.map(([name]) => [name, []]));
    const bootstrapped = new Set<number>();
    const stats: BootstrapStats = { bootstrapped: 0, attempts: 0, errors: 0, examplesTried: 0 };
    this.stats = stats;
    for (const [index, example] of trainset.entries()) {
      if (bootstrapped.size >= this.maxBootstrappedDemos) break;
      stats.examplesTried++;
      for (let round = 0; round < this.maxRounds; round++) {
        stats.attempts++;
        const demos = await this.bootstrapOne(
          teacher,
          teacherPredictors,
          predictorNames,
          example,
          round,
          stats,
        );
        if (demos) {
          for (const [name, list] of demos) name2traces.get(name)?.push(...list);
          bootstrapped.add(index);
          break;
        }
      }
    }
    stats.bootstrapped = bootstrapped.size;
    const validation = trainset.filter((_, i) => !bootstrapped.has(i));
    createRng(0).shuffle(validation);

    // Phase 2: augmented demos first, then raw ones. DSPy reassigns the raw pool, so a later predictor samples
    // from the previous predictor's sample (quirk kept).
    const rng = createRng(0);
    let raw: Example[] = validation;
    for (const [name, predictor] of studentPredictors) {
      const augmented = (name2traces.get(name) ?? []).slice(0, this.maxBootstrappedDemos);
      const size = Math.max(0, Math.min(this.maxLabeledDemos - augmented.length, raw.length));
      raw = rng.sample(raw, size);
      predictor.demos = [...augmented, ...raw];
    }
    compiledStudent.compiled = true;
    return compiledStudent;
  }

  /** One teacher run; the demos per predictor name when the metric passes, else null. */
  private async bootstrapOne(
    teacher: Module,
    teacherPredictors: [string, Predict][],
    predictorNames: Map<Predict, string>,
    example: Example,
    round: number,
    stats: BootstrapStats,
  ): Promise<Map<string, Example[]> | null> {
    const trace: TraceEntry[] = [];
    let prediction: Prediction;
    let success: boolean;
    try {
      prediction = await settings.context(this.teacherSettings, () => {
        const lm = settings.get('lm') as LM | null;
        // A later round samples afresh at temperature 1.0, past the cache.
        const roundLm = round > 0 && lm ? lmWithRollout(lm, round, 1.0) : null;
        const run = async () => {
          const saved = teacherPredictors.map(([, p]) => p.demos);
          // The example must not be its own demo.
          for (const [, p] of teacherPredictors)
            p.demos = p.demos.filter((d: Demo) => !exampleEquals(d, example));
          try {
            return await teacher.call(example.inputs().toDict(), { signal: this.signal });
          } finally {
            teacherPredictors.forEach(([, p], i) => (p.demos = saved[i]));
          }
        };
        const withTrace = () => settings.runWith({ ...settings.callContext(), trace }, run);
        return roundLm ? settings.context({ lm: roundLm }, withTrace) : withTrace();
      });
      success = this.metric
        ? metricPasses(await this.metric(example, prediction, trace), this.metricThreshold)
        : true;
    } catch (error) {
      if (this.isFatal(error)) throw error;
      stats.errors++;
      if (stats.errors >= this.maxErrors) throw error;
      return null;
    }
    if (!success) return null;

    const byName = new Map<string, Example[]>();
    for (const step of trace) {
      const name = predictorNames.get(step.predictor as Predict);
      if (name === undefined) continue;
      const outputs = (step.prediction as Prediction).toDict();
      const demo = new Example({ augmented: true, ...step.inputs, ...outputs });
      byName.set(name, [...(byName.get(name) ?? []), demo]);
    }
    for (const [name, demos] of byName) {
      // A predictor that ran several times keeps one: the last, or with p=0.5 one of the others.
      if (demos.length > 1) {
        const rng = createRng(hashString(JSON.stringify(demos.map((d) => d.toDict()))));
        byName.set(name, [rng.random() < 0.5 ? rng.choice(demos.slice(0, -1)) : demos[demos.length - 1]]);
      }
    }
    return byName;
  }
}
