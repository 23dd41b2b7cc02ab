/**
 * DSPy `MIPROv2` (teleprompt/mipro_optimizer_v2.py, optimizers.md §1): bootstrap demo-set candidates, propose
 * grounded instructions (the original kept as candidate 0), then search instruction × demo-set combinations
 * with a seeded multivariate TPE. Scores are full-valset evaluations, or minibatches with periodic full
 * evaluations; the returned program is the best on a full evaluation, the unmodified program winning ties.
 *
 * Beyond DSPy: every LM call goes through an `LMUsageMeter` (call/cost budget, one concurrency limit shared by
 * evaluation and proposal), progress events, and a clean stop with the best fully evaluated program when the
 * budget runs out, the run is cancelled, or the LM fails for good.
 */
import type { Demo } from '../adapters/base-adapter';
import type { LM } from '../clients/lm';
import type { Example } from '../primitives/example';
import type { Module } from '../primitives/module';
import { LMAbortedError } from '../utils/exceptions';
import type { Settings } from '../utils/settings';
import { settings as dspySettings } from '../utils/settings';
import {
  BudgetExceededError,
  isRunEndingError,
  LMUsageMeter,
  type BudgetLimits,
  type PriceFn,
  type UsageSnapshot,
} from './budget';
import { createNFewshotDemoSets } from './demo-sets';
import { evaluate, type EvaluationResult } from './evaluate';
import { GroundedProposer } from './grounded-proposer';
import type { Metric } from './metric';
import {
  BOOTSTRAPPED_FEWSHOT_EXAMPLES_IN_CONTEXT,
  estimateMiproCost,
  LABELED_FEWSHOT_EXAMPLES_IN_CONTEXT,
  MiproConfigError,
  resolveMiproSettings,
  splitDatasets,
  type AutoMode,
  type CostEstimate,
  type ResolvedMiproSettings,
} from './mipro-settings';
import { deepcopyProgram, namedPredicts } from './program-utils';
import { emitProgress, type ProgressReporter, type StoppedReason } from './progress';
import { createRng } from './rng';
import { tpeStrategy, type CategoricalSpace, type TrialParams, type SearchStrategy } from './tpe';

export interface MiproOptions {
  metric: Metric;
  /** The model the program runs on. */
  taskLm: LM;
  /** The model that proposes instructions (default: the task model). */
  promptLm?: LM;
  /** Default 'light'; null needs `numCandidates` here and `numTrials` in compile. */
  auto?: AutoMode | null;
  numCandidates?: number | null;
  maxBootstrappedDemos?: number;
  maxLabeledDemos?: number;
  /** Default 9. PORT: 0 is a seed like any other (DSPy's `seed or self.seed` turns it into 9). */
  seed?: number;
  initTemperature?: number;
  metricThreshold?: number | null;
  /** Failures per evaluation before it is cancelled (default 10). */
  maxErrors?: number;
  /** Examples evaluated at once and concurrent LM requests (default 8, DSPy's num_threads). */
  numThreads?: number;
  teacherSettings?: Partial<Pick<Settings, 'lm' | 'adapter'>>;
  /** The search strategy (default: Optuna-style multivariate TPE). */
  search?: (ctx: { seed: number }) => SearchStrategy;
  budget?: BudgetLimits;
  priceOf?: PriceFn;
  /** A meter to share with other work (its limits and limiter win over `budget` and `numThreads`). */
  meter?: LMUsageMeter;
  progress?: ProgressReporter;
  signal?: AbortSignal;
}

export interface MiproCompileOptions {
  trainset: readonly Example[];
  valset?: readonly Example[];
  teacher?: Module | null;
  numTrials?: number | null;
  minibatch?: boolean;
  minibatchSize?: number;
  minibatchFullEvalSteps?: number;
  programAwareProposer?: boolean;
  dataAwareProposer?: boolean;
  tipAwareProposer?: boolean;
  fewshotAwareProposer?: boolean;
  viewDataBatchSize?: number;
}

export interface MiproTrial {
  kind: 'default' | 'trial' | 'full';
  /** 1-based search trial (0 for the default program; a full evaluation carries the trial it followed). */
  n: number;
  params: TrialParams;
  score: number;
  /** Scored on the whole valset. */
  full: boolean;
  /** Why the evaluation scored 0 (DSPy scores a failed evaluation 0 and carries on). */
  error?: string;
}

export interface MiproResult<P extends Module> {
  /** The best fully evaluated program (the unmodified one when nothing beat it). */
  program: P;
  /** Its full-valset score, 0–100. */
  score: number;
  defaultScore: number;
  bestParams: TrialParams;
  trials: MiproTrial[];
  /** Fully evaluated candidates, best first (DSPy `candidate_programs`). */
  candidates: { params: TrialParams; score: number }[];
  instructionCandidates: string[][];
  demoCandidates: Demo[][][] | null;
  settings: ResolvedMiproSettings;
  estimate: CostEstimate;
  trainset: Example[];
  valset: Example[];
  usage: UsageSnapshot;
  seconds: number;
  /** Set when the run ended early; the program is then the best fully evaluated so far. */
  stoppedReason?: StoppedReason;
  error?: unknown;
}

/** The run ended before any program was fully evaluated, so there is nothing to return. */
export class MiproRunError extends Error {
  constructor(
    message: string,
    readonly reason: StoppedReason,
    readonly usage: UsageSnapshot,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MiproRunError';
  }
}

function stoppedReasonOf(error: unknown, signal?: AbortSignal): StoppedReason {
  if (error instanceof BudgetExceededError) return 'budget';
  if (error instanceof LMAbortedError && signal?.aborted) return 'abort';
  return 'error';
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** `"0_predictor_instruction"` / `"0_predictor_demos"`, in DSPy's order. */
export function searchSpace(
  instructionCandidates: string[][],
  demoCandidates: Demo[][][] | null,
): CategoricalSpace {
  const space: Record<string, number> = {};
  instructionCandidates.forEach((list, i) => {
    space[`${i}_predictor_instruction`] = list.length;
    if (demoCandidates) space[`${i}_predictor_demos`] = demoCandidates[i].length;
  });
  return space;
}

/** DSPy `_select_and_insert_instructions_and_demos` on a deep copy. */
export function applyParams<P extends Module>(
  program: P,
  params: TrialParams,
  instructionCandidates: string[][],
  demoCandidates: Demo[][][] | null,
): P {
  const candidate = deepcopyProgram(program);
  namedPredicts(candidate).forEach(([, predictor], i) => {
    predictor.signature = predictor.signature.withInstructions(
      instructionCandidates[i][params[`${i}_predictor_instruction`]],
    );
    if (demoCandidates) predictor.demos = demoCandidates[i][params[`${i}_predictor_demos`]];
  });
  return candidate;
}

const paramsKey = (params: TrialParams) =>
  Object.entries(params)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

export class MIPROv2 {
  readonly options: MiproOptions;

  constructor(options: MiproOptions) {
    if (!options.metric) throw new MiproConfigError('MIPROv2 needs a metric');
    if (!options.taskLm) throw new MiproConfigError('MIPROv2 needs a task LM');
    this.options = options;
  }

  async compile<P extends Module>(student: P, c: MiproCompileOptions): Promise<MiproResult<P>> {
    const started = performance.now();
    const o = this.options;
    const seed = o.seed ?? 9;
    const predictors = namedPredicts(student);
    const settings = resolveMiproSettings({
      numPredictors: predictors.length,
      trainsetSize: c.trainset.length,
      valsetSize: c.valset?.length,
      auto: o.auto,
      numCandidates: o.numCandidates,
      numTrials: c.numTrials,
      maxBootstrappedDemos: o.maxBootstrappedDemos,
      maxLabeledDemos: o.maxLabeledDemos,
      minibatch: c.minibatch,
      minibatchSize: c.minibatchSize,
      minibatchFullEvalSteps: c.minibatchFullEvalSteps,
      programAware: c.programAwareProposer,
      dataAware: c.dataAwareProposer,
      viewDataBatchSize: c.viewDataBatchSize,
    });
    const estimate = estimateMiproCost(settings);
    const meter =
      o.meter ?? new LMUsageMeter({ limits: o.budget, concurrency: o.numThreads ?? 8, priceOf: o.priceOf });
    const maxCalls = meter.limits.maxLmCalls;
    if (maxCalls !== undefined && maxCalls < estimate.minimumLmCalls) {
      throw new MiproConfigError(
        `a budget of ${maxCalls} LM calls cannot reach a first full evaluation: bootstrapping, instruction ` +
          `proposal and the default program's evaluation take at least ${estimate.minimumLmCalls} calls; ` +
          `raise it to at least ${estimate.minimumLmCalls}`,
      );
    }

    const root = createRng(seed);
    const { trainset, valset } = splitDatasets(c.trainset, c.valset, settings, root.fork('split'));
    const plan = [
      `num_trials: ${settings.numTrials}`,
      `minibatch: ${settings.minibatch ? 'True' : 'False'}`,
      ...(settings.minibatch ? [`minibatch_size: ${settings.minibatchSize}`] : []),
      `num_fewshot_candidates: ${settings.numFewshotCandidates}`,
      `num_instruct_candidates: ${settings.numInstructCandidates}`,
      `valset size: ${valset.length}`,
    ];
    emitProgress(o.progress, { type: 'plan', lines: plan, estimatedLmCalls: estimate.lmCalls });
    for (const message of settings.warnings) emitProgress(o.progress, { type: 'warning', message });
    if (maxCalls !== undefined && maxCalls < estimate.lmCalls) {
      emitProgress(o.progress, {
        type: 'warning',
        message: `the budget of ${maxCalls} LM calls is below the estimate of ${estimate.lmCalls} (before cache hits): the search may stop early`,
      });
    }

    const taskLm = meter.wrap(o.taskLm, 'task');
    const promptLm = meter.wrap(o.promptLm ?? o.taskLm, 'prompt');
    const program = deepcopyProgram(student);
    const fail = (error: unknown, phase: string): never => {
      const reason = stoppedReasonOf(error, o.signal);
      emitProgress(o.progress, { type: 'stopped', reason, message: describeError(error) });
      emitProgress(o.progress, { type: 'done', best: null, stoppedReason: reason });
      throw new MiproRunError(
        `MIPROv2 stopped during ${phase}, before any program was fully evaluated: ${describeError(error)}`,
        reason,
        meter.snapshot(),
        { cause: error },
      );
    };

    // Step 1: demo-set candidates.
    emitProgress(o.progress, {
      type: 'phase',
      phase: 'bootstrap',
      message: 'Bootstrapping few-shot examples',
    });
    let demoCandidates: Demo[][][] | null = null;
    try {
      demoCandidates = await dspySettings.context({ lm: taskLm }, () =>
        createNFewshotDemoSets(program, {
          numCandidateSets: settings.numFewshotCandidates,
          trainset,
          maxLabeledDemos: settings.zeroshot ? LABELED_FEWSHOT_EXAMPLES_IN_CONTEXT : settings.maxLabeledDemos,
          maxBootstrappedDemos: settings.zeroshot
            ? BOOTSTRAPPED_FEWSHOT_EXAMPLES_IN_CONTEXT
            : settings.maxBootstrappedDemos,
          metric: o.metric,
          metricThreshold: o.metricThreshold,
          teacherSettings: o.teacherSettings,
          teacher: c.teacher,
          maxErrors: o.maxErrors ?? 10,
          rng: root.fork('bootstrap'),
          isFatal: isRunEndingError,
          signal: o.signal,
          progress: o.progress,
        }),
      );
    } catch (error) {
      if (isRunEndingError(error)) fail(error, 'bootstrapping');
      // DSPy logs the error and runs without few-shot examples.
      emitProgress(o.progress, {
        type: 'warning',
        message: `bootstrapping failed (${describeError(error)}); running without few-shot examples`,
      });
    }

    // Step 2: instruction candidates.
    emitProgress(o.progress, {
      type: 'phase',
      phase: 'propose',
      message: `Proposing N=${settings.numInstructCandidates} instructions`,
    });
    let instructionCandidates: string[][] = [];
    try {
      const proposer = await GroundedProposer.create({
        promptLm,
        program,
        trainset,
        rng: root.fork('propose'),
        viewDataBatchSize: settings.viewDataBatchSize,
        useDatasetSummary: settings.dataAware,
        programAware: settings.programAware,
        useTaskDemos: c.fewshotAwareProposer ?? true,
        numDemosInContext: BOOTSTRAPPED_FEWSHOT_EXAMPLES_IN_CONTEXT,
        useTip: c.tipAwareProposer ?? true,
        setTipRandomly: c.tipAwareProposer ?? true,
        initTemperature: o.initTemperature ?? 1.0,
        signal: o.signal,
        isFatal: isRunEndingError,
        progress: o.progress,
      });
      instructionCandidates = await proposer.proposeInstructionsForProgram(
        demoCandidates,
        settings.numInstructCandidates,
      );
      for (const f of proposer.failures) {
        emitProgress(o.progress, {
          type: 'warning',
          message: `proposal ${f.index} for predictor ${f.predictor} failed (${describeError(f.error)}); using the original instruction`,
        });
      }
    } catch (error) {
      fail(error, 'instruction proposal');
    }
    namedPredicts(program).forEach(([, p], i) => {
      instructionCandidates[i] = instructionCandidates[i] ?? [];
      instructionCandidates[i][0] = p.signature.instructions;
    });
    if (settings.zeroshot) demoCandidates = null;

    // Step 3: the search.
    emitProgress(o.progress, {
      type: 'phase',
      phase: 'search',
      message: 'Finding optimal prompt parameters',
    });
    const evalRng = root.fork('minibatch');
    const evalOn = (candidate: Module, devset: Example[], label: string): Promise<EvaluationResult> =>
      evaluate(candidate, {
        devset,
        metric: o.metric,
        numThreads: o.numThreads ?? 8,
        maxErrors: o.maxErrors ?? 10,
        lm: taskLm,
        signal: o.signal,
        progress: o.progress,
        label,
        isFatal: isRunEndingError,
      });
    /** DSPy `eval_candidate_program`: a failed evaluation scores 0, unless the run must end. */
    const scoreOf = async (
      candidate: Module,
      devset: Example[],
      label: string,
    ): Promise<{ score: number; error?: string }> => {
      try {
        return { score: (await evalOn(candidate, devset, label)).score };
      } catch (error) {
        if (isRunEndingError(error)) throw error;
        return { score: 0, error: describeError(error) };
      }
    };

    const space = searchSpace(instructionCandidates, demoCandidates);
    const defaultParams: TrialParams = Object.fromEntries(Object.keys(space).map((k) => [k, 0]));
    const trials: MiproTrial[] = [];
    let defaultEval: { score: number; error?: string };
    try {
      defaultEval = await scoreOf(program, valset, 'default program');
    } catch (error) {
      return fail(error, "the default program's evaluation");
    }
    trials.push({
      kind: 'default',
      n: 0,
      params: defaultParams,
      score: defaultEval.score,
      full: true,
      ...(defaultEval.error ? { error: defaultEval.error } : {}),
    });
    emitProgress(o.progress, {
      type: 'trial',
      kind: 'default',
      n: 0,
      total: settings.numTrials,
      params: defaultParams,
      score: defaultEval.score,
      full: true,
      best: defaultEval.score,
    });
    let best = { score: defaultEval.score, params: defaultParams, program: program as Module };
    /** Strict `>`: a tie keeps the earlier program, so the default wins every tie. */
    const consider = (score: number, params: TrialParams, candidate: Module): boolean => {
      if (score <= best.score) return false;
      best = { score, params, program: candidate };
      return true;
    };
    const announce = (improved: boolean) => {
      if (improved) emitProgress(o.progress, { type: 'best', score: best.score, params: best.params });
    };
    const strategy = (o.search ?? (() => tpeStrategy()))({ seed });
    strategy.init(space, root.fork('search'));
    strategy.tell({ params: defaultParams, value: defaultEval.score });

    const paramScores = new Map<string, { scores: number[]; program: Module; params: TrialParams }>();
    const fullyEvaluated = new Set<string>([paramsKey(defaultParams)]);
    let stoppedReason: StoppedReason | undefined;
    let stopError: unknown;
    const fullEvalAfter = new Set(settings.fullEvalAfter);

    for (let n = 1; n <= settings.numTrials; n++) {
      if (o.signal?.aborted) {
        stoppedReason = 'abort';
        break;
      }
      if (meter.exhausted()) {
        stoppedReason = 'budget';
        break;
      }
      try {
        const params = strategy.ask();
        const candidate = applyParams(program, params, instructionCandidates, demoCandidates);
        const batch = settings.minibatch
          ? evalRng.sample(valset, Math.min(settings.minibatchSize, valset.length))
          : valset;
        const full = batch.length >= valset.length;
        const result = await scoreOf(candidate, batch, `trial ${n}/${settings.numTrials}`);
        trials.push({
          kind: 'trial',
          n,
          params,
          score: result.score,
          full,
          ...(result.error ? { error: result.error } : {}),
        });
        const improved = !settings.minibatch && consider(result.score, params, candidate);
        if (full) fullyEvaluated.add(paramsKey(params));
        const key = paramsKey(params);
        const entry = paramScores.get(key) ?? { scores: [], program: candidate, params };
        entry.scores.push(result.score);
        paramScores.set(key, entry);
        strategy.tell({ params, value: result.score });
        emitProgress(o.progress, {
          type: 'trial',
          kind: 'trial',
          n,
          total: settings.numTrials,
          params,
          score: result.score,
          full,
          best: best.score,
          ...(result.error ? { error: result.error } : {}),
        });
        announce(improved);

        if (settings.minibatch && fullEvalAfter.has(n)) {
          // DSPy `get_program_with_highest_avg_score`: the best mean minibatch score not yet fully evaluated.
          const next = [...paramScores.entries()]
            .filter(([k]) => !fullyEvaluated.has(k))
            .map(([k, v]) => ({ key: k, mean: v.scores.reduce((s, x) => s + x, 0) / v.scores.length, ...v }))
            .sort((a, b) => b.mean - a.mean)[0];
          // PORT: DSPy raises "No valid program found in param_score_dict" here and aborts the compile.
          if (next) {
            const fullEval = await scoreOf(next.program, valset, `full evaluation after trial ${n}`);
            fullyEvaluated.add(next.key);
            trials.push({
              kind: 'full',
              n,
              params: next.params,
              score: fullEval.score,
              full: true,
              ...(fullEval.error ? { error: fullEval.error } : {}),
            });
            strategy.tell({ params: next.params, value: fullEval.score });
            const better = consider(fullEval.score, next.params, next.program);
            emitProgress(o.progress, {
              type: 'trial',
              kind: 'full',
              n,
              total: settings.numTrials,
              params: next.params,
              score: fullEval.score,
              full: true,
              best: best.score,
            });
            announce(better);
          }
        }
      } catch (error) {
        stoppedReason = stoppedReasonOf(error, o.signal);
        stopError = error;
        break;
      }
    }
    if (stoppedReason) {
      emitProgress(o.progress, {
        type: 'stopped',
        reason: stoppedReason,
        message: stopError
          ? describeError(stopError)
          : stoppedReason === 'budget'
            ? 'the LM budget is used up'
            : 'cancelled',
      });
    }
    emitProgress(o.progress, { type: 'done', best: best.score, ...(stoppedReason ? { stoppedReason } : {}) });

    const candidates = trials
      .filter((t) => t.full)
      .map((t) => ({ params: t.params, score: t.score }))
      .sort((a, b) => b.score - a.score);
    return {
      program: deepcopyProgram(best.program) as P,
      score: best.score,
      defaultScore: defaultEval.score,
      bestParams: best.params,
      trials,
      candidates,
      instructionCandidates,
      demoCandidates,
      settings,
      estimate,
      trainset,
      valset,
      usage: meter.snapshot(),
      seconds: (performance.now() - started) / 1000,
      ...(stoppedReason ? { stoppedReason } : {}),
      ...(stopError !== undefined ? { error: stopError } : {}),
    };
  }
}
