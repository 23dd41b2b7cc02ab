/**
 * DSPy `GroundedProposer` (propose/grounded_proposer.py, optimizers.md §1.5): instruction candidates grounded in a
 * dataset summary, a description of the program and of the module, demos from the bootstrapped sets, and a
 * randomly drawn tip. Each proposal samples the prompt model afresh (a new rollout id at `initTemperature`) and
 * costs 3 calls when program-aware (describe program, describe module, generate), 1 otherwise. The prompts are
 * DSPy's, verbatim.
 */
import type { Demo } from '../adapters/base-adapter';
import type { LM } from '../clients/lm';
import { Predict } from '../predict/predict';
import type { Example } from '../primitives/example';
import type { Module } from '../primitives/module';
import { Signature, type FieldSpec } from '../signatures/signature';
import { pyStr } from '../utils/python';
import { settings } from '../utils/settings';
import { createDatasetSummary, stripPrefix } from './dataset-summary';
import { describeProgram, lmWithRollout, namedPredicts } from './program-utils';
import { emitProgress, type ProgressReporter } from './progress';
import type { Rng } from './rng';

/** DSPy `TIPS`, in DSPy's order: one is drawn per proposal, all equally likely. */
export const TIPS: Readonly<Record<string, string>> = {
  none: '',
  creative: "Don't be afraid to be creative when creating the new instruction!",
  simple: 'Keep the instruction clear and concise.',
  description: 'Make sure your instruction is very informative and descriptive.',
  high_stakes: 'The instruction should include a high stakes scenario in which the LM must solve the task!',
  persona: 'Include a persona that is relevant to the task in the instruction (ie. "You are a ...")',
};

const PROGRAM_CODE_DESC = 'Pseudocode for a language model program designed to solve a particular task.';
const PROGRAM_EXAMPLE_DESC = 'An example of the program in use.';

export const DescribeProgram = Signature.define({
  name: 'DescribeProgram',
  instructions:
    'Below is some pseudo-code for a pipeline that solves tasks with calls to language models. Please describe what type of task this program appears to be designed to solve, and how it appears to work.',
  inputs: {
    program_code: { desc: PROGRAM_CODE_DESC, prefix: 'PROGRAM CODE:' },
    program_example: { desc: PROGRAM_EXAMPLE_DESC, prefix: 'EXAMPLE OF PROGRAM IN USE:' },
  },
  outputs: {
    program_description: {
      desc: 'Describe what task the program is designed to solve, and how it goes about solving this task.',
      prefix: 'SUMMARY OF PROGRAM ABOVE:',
    },
  },
});

export const DescribeModule = Signature.define({
  name: 'DescribeModule',
  instructions:
    'Below is some pseudo-code for a pipeline that solves tasks with calls to language models. Please describe the purpose of one of the specified module in this pipeline.',
  inputs: {
    program_code: { desc: PROGRAM_CODE_DESC, prefix: 'PROGRAM CODE:' },
    program_example: { desc: PROGRAM_EXAMPLE_DESC, prefix: 'EXAMPLE OF PROGRAM IN USE:' },
    program_description: {
      desc: 'Summary of the task the program is designed to solve, and how it goes about solving it.',
      prefix: 'SUMMARY OF PROGRAM ABOVE:',
    },
    module: { desc: 'The module in the program that we want to describe.', prefix: 'MODULE:' },
  },
  outputs: {
    module_description: {
      desc: "Description of the module's role in the broader program.",
      prefix: 'MODULE DESCRIPTION:',
    },
  },
});

export interface InstructionSignatureFlags {
  useDatasetSummary: boolean;
  programAware: boolean;
  useInstructHistory: boolean;
  useTip: boolean;
}

/** DSPy `generate_instruction_class`: GenerateSingleModuleInstruction with the fields the flags select. */
export function generateInstructionSignature(flags: InstructionSignatureFlags): Signature {
  const inputs: Record<string, FieldSpec> = {};
  if (flags.useDatasetSummary) {
    inputs.dataset_description = {
      desc: 'A description of the dataset that we are using.',
      prefix: 'DATASET SUMMARY:',
    };
  }
  if (flags.programAware) {
    inputs.program_code = {
      desc: 'Language model program designed to solve a particular task.',
      prefix: 'PROGRAM CODE:',
    };
    inputs.program_description = {
      desc: 'Summary of the task the program is designed to solve, and how it goes about solving it.',
      prefix: 'PROGRAM DESCRIPTION:',
    };
    inputs.module = { desc: 'The module to create an instruction for.', prefix: 'MODULE:' };
    inputs.module_description = {
      desc: 'Description of the module to create an instruction for.',
      prefix: 'MODULE DESCRIPTION:',
    };
  }
  inputs.task_demos = { desc: 'Example inputs/outputs of our module.', prefix: 'TASK DEMO(S):' };
  if (flags.useInstructHistory) {
    inputs.previous_instructions = {
      desc: "Previous instructions we've attempted, along with their associated scores.",
      prefix: 'PREVIOUS INSTRUCTIONS:',
    };
  }
  inputs.basic_instruction = { desc: 'Basic instruction.', prefix: 'BASIC INSTRUCTION:' };
  if (flags.useTip) {
    inputs.tip = { desc: 'A suggestion for how to go about generating the new instruction.', prefix: 'TIP:' };
  }
  return Signature.define({
    name: 'GenerateSingleModuleInstruction',
    instructions:
      'Use the information below to learn about a task that we are trying to solve using calls to an LM, then generate a new instruction that will be used to prompt a Language Model to better solve the task.',
    inputs,
    outputs: {
      proposed_instruction: {
        desc: 'Propose an instruction that will be used to prompt a Language Model to perform this task.',
        prefix: 'PROPOSED INSTRUCTION:',
      },
    },
  });
}

function demoDict(demo: Demo): Record<string, unknown> {
  return typeof (demo as { toDict?: unknown }).toDict === 'function'
    ? (demo as { toDict(): Record<string, unknown> }).toDict()
    : demo;
}

/** DSPy `create_example_string`: one `<prefix> <value>` line per signature field. */
export function createExampleString(signature: Signature, demo: Demo): string {
  const d = demoDict(demo);
  return signature.fields.map((f) => `${f.prefix} ${pyStr(d[f.name] ?? null)}`).join('\n');
}

/**
 * The `task_demos` text for one proposal: up to `max` augmented demos walking the sets from `demoSetI` on (then
 * wrapping round), or "No task demos provided." when there are none or `demoSetI` is 0.
 */
export function taskDemosText(
  signature: Signature,
  sets: readonly (readonly Demo[])[] | null,
  demoSetI: number,
  max: number,
): string {
  let text = '';
  if (sets) {
    const ordered = [sets[demoSetI], ...sets.slice(demoSetI + 1), ...sets.slice(0, demoSetI)];
    const strings: string[] = [];
    outer: for (const set of ordered) {
      for (const demo of set ?? []) {
        if ('augmented' in demoDict(demo)) {
          strings.push(createExampleString(signature, demo));
          if (strings.length >= max) break outer;
        }
      }
    }
    text = `${strings.join('\n\n')}\n\n`;
  }
  return !text.trim() || demoSetI === 0 ? 'No task demos provided.' : text;
}

export interface GroundedProposerOptions {
  promptLm: LM;
  program: Module;
  trainset: readonly Example[];
  rng: Rng;
  viewDataBatchSize?: number;
  useDatasetSummary?: boolean;
  programAware?: boolean;
  useTaskDemos?: boolean;
  numDemosInContext?: number;
  useTip?: boolean;
  setTipRandomly?: boolean;
  initTemperature?: number;
  signal?: AbortSignal;
  /** Errors that end the run instead of switching a feature off (DSPy swallows them all). */
  isFatal?: (error: unknown) => boolean;
  progress?: ProgressReporter;
}

interface ProposalPlan {
  predictor: number;
  demoSetI: number;
  tipKey: string | null;
  rolloutId: number;
}

export class GroundedProposer {
  programAware: boolean;
  useDatasetSummary: boolean;
  useTaskDemos: boolean;
  useTip: boolean;
  programCode: string | null = null;
  dataSummary: string | null = null;
  /** Proposals whose generation failed and fell back to the basic instruction. */
  readonly failures: { predictor: number; index: number; error: unknown }[] = [];
  private readonly options: GroundedProposerOptions;

  private constructor(options: GroundedProposerOptions) {
    this.options = options;
    this.programAware = options.programAware ?? true;
    this.useDatasetSummary = options.useDatasetSummary ?? true;
    this.useTaskDemos = options.useTaskDemos ?? true;
    this.useTip = options.useTip ?? true;
  }

  private fatal(error: unknown): boolean {
    return this.options.isFatal?.(error) ?? false;
  }

  /** The constructor's work: program code (program-aware) and the dataset summary (data-aware). */
  static async create(options: GroundedProposerOptions): Promise<GroundedProposer> {
    const proposer = new GroundedProposer(options);
    if (proposer.programAware) {
      try {
        proposer.programCode = describeProgram(options.program);
      } catch {
        proposer.programAware = false;
      }
    }
    if (proposer.useDatasetSummary) {
      try {
        proposer.dataSummary = await createDatasetSummary(options.trainset, options.promptLm, {
          viewDataBatchSize: options.viewDataBatchSize,
          signal: options.signal,
          isFatal: options.isFatal,
        });
      } catch (error) {
        if (proposer.fatal(error)) throw error;
        proposer.useDatasetSummary = false;
      }
    }
    emitProgress(options.progress, { type: 'propose:summary', summary: proposer.dataSummary });
    return proposer;
  }

  /**
   * DSPy `propose_instructions_for_program`: `min(N, number of demo sets)` proposals per predictor (N without demo
   * sets). The random draws (tip, then rollout id, per proposal) are made in DSPy's order before any call, so the
   * proposals can run concurrently under the shared limiter and still be reproducible.
   */
  async proposeInstructionsForProgram(demoCandidates: Demo[][][] | null, n: number): Promise<string[][]> {
    const { program, rng } = this.options;
    const predictors = namedPredicts(program);
    if (!demoCandidates) this.useTaskDemos = false;
    const numDemos = demoCandidates ? Math.max(demoCandidates[0]?.length ?? 0, 1) : n;
    const plans: ProposalPlan[] = [];
    predictors.forEach((_, predictor) => {
      for (let demoSetI = 0; demoSetI < Math.min(n, numDemos); demoSetI++) {
        let tipKey: string | null = null;
        if (this.options.setTipRandomly ?? true) tipKey = rng.choice(Object.keys(TIPS));
        plans.push({ predictor, demoSetI, tipKey, rolloutId: rng.int(0, 10 ** 9) });
      }
    });
    const cancel = new AbortController();
    const signal = this.options.signal
      ? AbortSignal.any([this.options.signal, cancel.signal])
      : cancel.signal;
    const results = await Promise.all(
      plans.map(async (plan) => {
        try {
          return await this.proposeInstructionForPredictor(plan, demoCandidates, signal);
        } catch (error) {
          cancel.abort();
          throw error;
        }
      }),
    );
    const out: string[][] = predictors.map(() => []);
    plans.forEach((plan, i) => out[plan.predictor].push(results[i]));
    return out;
  }

  private async proposeInstructionForPredictor(
    plan: ProposalPlan,
    demoCandidates: Demo[][][] | null,
    signal: AbortSignal,
  ): Promise<string> {
    const { promptLm, program } = this.options;
    const predictor = namedPredicts(program)[plan.predictor][1];
    const signature = predictor.signature;
    const tip = plan.tipKey === null ? null : TIPS[plan.tipKey];
    const useTip = plan.tipKey === null ? this.useTip : !!tip;
    const rolloutLm = lmWithRollout(promptLm, plan.rolloutId, this.options.initTemperature ?? 1.0);
    const call = (sig: Signature, inputs: Record<string, unknown>) =>
      settings.context({ lm: rolloutLm }, () => new Predict(sig).call(inputs, { signal }));

    const useTaskDemos = this.useTaskDemos && !!demoCandidates;
    const taskDemos = taskDemosText(
      signature,
      useTaskDemos && demoCandidates ? demoCandidates[plan.predictor] : null,
      plan.demoSetI,
      this.options.numDemosInContext ?? 3,
    );

    let programDescription = 'Not available';
    let moduleCode = '';
    let moduleDescription = 'Not provided';
    if (this.programAware) {
      try {
        const described = await call(DescribeProgram, {
          program_code: this.programCode,
          program_example: taskDemos,
        });
        programDescription = stripPrefix(String(described.get('program_description') ?? ''));
        const names = (role: 'input' | 'output') =>
          signature.fields.filter((f) => f.role === role).map((f) => f.name);
        moduleCode = `${predictor.constructor.name}(${names('input').join(', ')}) -> ${names('output').join(', ')}`;
        const module = await call(DescribeModule, {
          program_code: this.programCode,
          program_example: taskDemos,
          program_description: programDescription,
          module: moduleCode,
        });
        moduleDescription = String(module.get('module_description') ?? '');
      } catch (error) {
        if (this.fatal(error)) throw error;
      }
    }

    const generator = generateInstructionSignature({
      useDatasetSummary: this.useDatasetSummary,
      programAware: this.programAware,
      useInstructHistory: false,
      useTip,
    });
    let instruction: string;
    try {
      const generated = await call(generator, {
        dataset_description: this.dataSummary,
        program_code: this.programCode,
        module: moduleCode,
        program_description: programDescription,
        module_description: moduleDescription,
        task_demos: taskDemos,
        tip,
        basic_instruction: signature.instructions,
      });
      // DSPy strips the prefix in GenerateModuleInstruction.forward and again in the proposer.
      instruction = stripPrefix(stripPrefix(String(generated.get('proposed_instruction') ?? '')));
    } catch (error) {
      if (this.fatal(error)) throw error;
      // PORT: DSPy lets the error end the compile; one unparseable proposal falls back to the basic instruction.
      this.failures.push({ predictor: plan.predictor, index: plan.demoSetI, error });
      instruction = signature.instructions;
    }
    emitProgress(this.options.progress, {
      type: 'propose:instruction',
      predictor: plan.predictor,
      index: plan.demoSetI,
      tip: plan.tipKey,
      instruction,
    });
    return instruction;
  }
}
