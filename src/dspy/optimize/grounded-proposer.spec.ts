import { LM } from '../clients/lm';
import { MemoryLMCache } from '../clients/cache';
import { Example } from '../primitives/example';
import { LMServerError } from '../utils/exceptions';
import { QAProgram } from '../../program/qa.program';
import { createDatasetSummary, stripPrefix } from './dataset-summary';
import {
  createExampleString,
  generateInstructionSignature,
  GroundedProposer,
  taskDemosText,
  TIPS,
} from './grounded-proposer';
import { describeProgram, examplesRepr } from './program-utils';
import { createRng } from './rng';
import { ScriptedProvider, type ScriptedAnswer, type ScriptedRequest } from './testing/scripted-provider';

const photosynthesis = new Example({
  question: 'What is photosynthesis?',
  answer: "Plants' way to make sugar.",
}).withInputs('question');

function proposerLm(answer: (r: ScriptedRequest) => ScriptedAnswer = defaultAnswer) {
  const provider = new ScriptedProvider(answer);
  return { provider, lm: new LM('openai/test', { provider, cacheStore: new MemoryLMCache() }) };
}

function defaultAnswer(r: ScriptedRequest): Record<string, string> {
  if (r.outputs.includes('proposed_instruction')) {
    return {
      proposed_instruction: `Proposed Instruction: "Answer carefully (${r.input('tip') ?? 'no tip'})."`,
    };
  }
  return {
    observations: 'Science questions.',
    summary: 'Summary: Short science questions with explanatory answers.',
    program_description: 'It answers questions.',
    module_description: 'The only module.',
  };
}

describe('proposer helpers', () => {
  it('strip_prefix drops a short leading label and surrounding quotes, nothing longer', () => {
    expect(stripPrefix('Proposed Instruction: "Answer well."')).toBe('Answer well.');
    expect(stripPrefix('** New instruction: Answer well.')).toBe('Answer well.');
    expect(stripPrefix('"Answer well."')).toBe('Answer well.');
    const long = 'A label with more than five words here: text';
    expect(stripPrefix(long)).toBe(long);
  });

  it("renders examples as Python's repr with sorted input keys, as the dataset descriptor sees them", () => {
    const two = new Example({ question: 'q', context: 'c', answer: 'a' }).withInputs('question', 'context');
    expect(examplesRepr([photosynthesis, two])).toBe(
      `[Example({'question': 'What is photosynthesis?', 'answer': "Plants' way to make sugar."}) (input_keys={'question'}), ` +
        `Example({'question': 'q', 'context': 'c', 'answer': 'a'}) (input_keys={'context', 'question'})]`,
    );
  });

  it('renders task demos from augmented demos only, walking the sets from the current one', () => {
    const signature = new QAProgram().predict.predict.signature;
    const aug = (n: number) =>
      new Example({
        augmented: true,
        question: `q${n}`,
        reasoning: `r${n}`,
        answer: `a${n}`,
        key_concepts: 'k',
        question_type: 't',
      });
    const sets = [[], [photosynthesis], [aug(1)], [aug(2)], [aug(3)], [aug(4)]];
    expect(taskDemosText(signature, sets, 0, 3)).toBe('No task demos provided.');
    expect(taskDemosText(signature, [[], [photosynthesis]], 1, 3)).toBe('No task demos provided.');
    const text = taskDemosText(signature, sets, 4, 3);
    expect(text).toBe(
      `${createExampleString(signature, aug(3))}\n\n${createExampleString(signature, aug(4))}\n\n${createExampleString(signature, aug(1))}\n\n`,
    );
    expect(createExampleString(signature, aug(1))).toBe(
      'Question: q1\nReasoning: r1\nAnswer: a1\nKey Concepts: k\nQuestion Type: t',
    );
    expect(createExampleString(signature, photosynthesis)).toContain('Reasoning: None');
  });

  it("describes the seed program as DSPy pseudo-code with the user's signature", () => {
    const code = describeProgram(new QAProgram());
    expect(code).toContain(
      'class QASignature(dspy.Signature):\n    """Answer a question with detailed reasoning."""',
    );
    expect(code).toContain('    question = dspy.InputField(desc="The question to answer")');
    expect(code).not.toContain('reasoning = ');
    expect(code).toContain('class QAProgram(dspy.Module):');
    expect(code).toContain('self.predict = dspy.ChainOfThought(QASignature)');
    expect(code).toContain('this.predict.call(');
  });

  it('builds GenerateSingleModuleInstruction with the fields the flags select, in DSPy order', () => {
    const all = generateInstructionSignature({
      useDatasetSummary: true,
      programAware: true,
      useInstructHistory: true,
      useTip: true,
    });
    expect(all.toString()).toBe(
      'dataset_description, program_code, program_description, module, module_description, task_demos, previous_instructions, basic_instruction, tip -> proposed_instruction',
    );
    const bare = generateInstructionSignature({
      useDatasetSummary: false,
      programAware: false,
      useInstructHistory: false,
      useTip: false,
    });
    expect(bare.toString()).toBe('task_demos, basic_instruction -> proposed_instruction');
    expect(all.instructions).toBe(
      'Use the information below to learn about a task that we are trying to solve using calls to an LM, then generate a new instruction that will be used to prompt a Language Model to better solve the task.',
    );
  });
});

describe('dataset summary', () => {
  it("sends DSPy's DatasetDescriptor and ObservationSummarizer prompts verbatim, at temperature 1.0 and n=1", async () => {
    const { provider, lm } = proposerLm();
    const summary = await createDatasetSummary([photosynthesis], lm);
    expect(summary).toBe('Short science questions with explanatory answers.');
    expect(provider.calls).toBe(2);
    const [describe, summarize] = provider.requests;
    expect(describe.system).toBe(
      'Your input fields are:\n1. `examples` (str): Sample data points from the dataset\n' +
        'Your output fields are:\n1. `observations` (str): Somethings that holds true for most or all of the data you observed\n' +
        'All interactions will be structured in the following way, with the appropriate values filled in.\n\n' +
        '[[ ## examples ## ]]\n{examples}\n\n[[ ## observations ## ]]\n{observations}\n\n[[ ## completed ## ]]\n' +
        'In adhering to this structure, your objective is: \n        ' +
        "Given several examples from a dataset please write observations about trends that hold for most or all of the samples. Some areas you may consider in your observations: topics, content, syntax, conciseness, etc. It will be useful to make an educated guess as to the nature of the task this dataset will enable. Don't be afraid to be creative",
    );
    expect(describe.user).toBe(
      `[[ ## examples ## ]]\n${examplesRepr([photosynthesis])}\n\n` +
        'Respond with the corresponding output fields, starting with the field `[[ ## observations ## ]]`, and then ending with the marker for `[[ ## completed ## ]]`.',
    );
    expect(describe.request.kwargs).toMatchObject({ n: 1, temperature: 1 });
    expect(summarize.instructions).toBe(
      'Given a series of observations I have made about my dataset, please summarize them into a brief 2-3 sentence summary which highlights only the most important details.',
    );
    expect(summarize.input('observations')).toBe('Science questions.');
  });

  it('continues over later batches (DatasetDescriptorWithPriorObservations) and skips COMPLETE answers', async () => {
    const trainset = Array.from({ length: 35 }, (_, i) =>
      new Example({ question: `q${i}` }).withInputs('question'),
    );
    let continuation = 0;
    const { provider, lm } = proposerLm((r) => {
      if (r.outputs.includes('summary')) return { summary: 'Done.' };
      if (r.input('prior_observations') !== null) {
        continuation++;
        return { observations: continuation === 2 ? 'COMPLETE' : ` more${continuation}` };
      }
      return { observations: 'first' };
    });
    await createDatasetSummary(trainset, lm);
    // 1 + batches at 10, 20, 30 + summarizer.
    expect(provider.calls).toBe(5);
    expect(provider.requests[2].instructions).toContain(
      'I will also provide you with a few observations I have already made.  Please add',
    );
    // Appended with no separator, as DSPy does (the adapter strips each answer).
    expect(provider.requests[4].input('observations')).toBe('firstmore1more3');
  });
});

describe('GroundedProposer', () => {
  const demoSets = () => {
    const aug = new Example({
      augmented: true,
      question: 'What is photosynthesis?',
      reasoning: 'r',
      answer: 'a',
      key_concepts: 'k',
      question_type: 'factual',
    });
    return [[[], [photosynthesis], [aug], [aug], [aug], [aug]]];
  };

  it('costs 2 + 3 per proposal, draws a tip and a fresh rollout per proposal, grounds it in demos and the summary', async () => {
    const { provider, lm } = proposerLm();
    const program = new QAProgram();
    const proposer = await GroundedProposer.create({
      promptLm: lm,
      program,
      trainset: [photosynthesis],
      rng: createRng(9),
    });
    const candidates = await proposer.proposeInstructionsForProgram(demoSets(), 3);
    expect(provider.calls).toBe(2 + 3 * 3);
    expect(candidates).toHaveLength(1);
    expect(candidates[0]).toHaveLength(3);
    const generations = provider.requests.filter((r) => r.outputs.includes('proposed_instruction'));
    expect(generations).toHaveLength(3);
    const rollouts = new Set(generations.map((r) => r.request.kwargs.rollout_id));
    expect(rollouts.size).toBe(3);
    for (const g of generations) {
      expect(g.request.kwargs.temperature).toBe(1);
      expect(g.input('dataset_description')).toBe('Short science questions with explanatory answers.');
      expect(g.input('module')).toBe('Predict(question) -> reasoning, answer, key_concepts, question_type');
      expect(g.input('basic_instruction')).toBe('Answer a question with detailed reasoning.');
      const tip = g.input('tip');
      // "none" drops the tip field; any other tip is one of DSPy's texts.
      if (tip !== null) expect(Object.values(TIPS)).toContain(tip);
    }
    // Proposal 0 never sees demos; the others see the augmented one.
    const demos = generations.map((g) => g.input('task_demos'));
    expect(demos.filter((d) => d === 'No task demos provided.')).toHaveLength(1);
    expect(
      demos.filter((d) => d?.startsWith('Question: What is photosynthesis?\nReasoning: r')),
    ).toHaveLength(2);
    // The label and the quotes are stripped.
    expect(candidates[0].every((c) => c.startsWith('Answer carefully ('))).toBe(true);
  });

  it('is reproducible for the same seed and the same answers', async () => {
    const run = async () => {
      const { provider, lm } = proposerLm();
      const proposer = await GroundedProposer.create({
        promptLm: lm,
        program: new QAProgram(),
        trainset: [photosynthesis],
        rng: createRng(3),
      });
      const out = await proposer.proposeInstructionsForProgram(demoSets(), 3);
      return { out, kwargs: provider.requests.map((r) => r.request.kwargs.rollout_id ?? null) };
    };
    expect(await run()).toEqual(await run());
  });

  it('makes 1 call per proposal when not program-aware, and drops the summary when it fails', async () => {
    const { provider, lm } = proposerLm((r) => {
      if (r.outputs.includes('observations')) return new Error('broken summary');
      return defaultAnswer(r);
    });
    const proposer = await GroundedProposer.create({
      promptLm: lm,
      program: new QAProgram(),
      trainset: [photosynthesis],
      rng: createRng(1),
      programAware: false,
    });
    expect(proposer.useDatasetSummary).toBe(false);
    const before = provider.calls;
    await proposer.proposeInstructionsForProgram(null, 2);
    expect(provider.calls - before).toBe(2);
    const g = provider.requests.at(-1)!;
    expect(g.input('dataset_description')).toBeNull();
    expect(g.input('program_code')).toBeNull();
    expect(g.input('task_demos')).toBe('No task demos provided.');
  });

  it('falls back to the basic instruction when a generation cannot be parsed, but ends on an outage', async () => {
    const { lm } = proposerLm((r) =>
      r.outputs.includes('proposed_instruction') ? new Error('garbage') : defaultAnswer(r),
    );
    const proposer = await GroundedProposer.create({
      promptLm: lm,
      program: new QAProgram(),
      trainset: [photosynthesis],
      rng: createRng(1),
    });
    const out = await proposer.proposeInstructionsForProgram(demoSets(), 2);
    expect(out[0]).toEqual([
      'Answer a question with detailed reasoning.',
      'Answer a question with detailed reasoning.',
    ]);
    expect(proposer.failures).toHaveLength(2);

    const down = proposerLm((r) =>
      r.outputs.includes('proposed_instruction') ? new LMServerError('down') : defaultAnswer(r),
    );
    const p2 = await GroundedProposer.create({
      promptLm: down.lm,
      program: new QAProgram(),
      trainset: [photosynthesis],
      rng: createRng(1),
      isFatal: (e) => e instanceof LMServerError,
    });
    await expect(p2.proposeInstructionsForProgram(demoSets(), 2)).rejects.toBeInstanceOf(LMServerError);
  });
});
