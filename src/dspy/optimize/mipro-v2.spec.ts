import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { LM } from '../clients/lm';
import { MemoryLMCache } from '../clients/cache';
import { Example } from '../primitives/example';
import type { Prediction } from '../primitives/prediction';
import { LMServerError } from '../utils/exceptions';
import { QAProgram } from '../../program/qa.program';
import { MiproConfigError } from './mipro-settings';
import { MIPROv2, MiproRunError, type MiproOptions, type MiproResult } from './mipro-v2';
import type { ProgressEvent } from './progress';
import { ScriptedProvider, type ScriptedAnswer, type ScriptedRequest } from './testing/scripted-provider';

const SEED_TRAINSET = (
  JSON.parse(readFileSync(resolve(__dirname, '../../../data/seed-trainset.json'), 'utf8')) as Record<
    string,
    string
  >[]
).map((d) => new Example(d).withInputs('question'));

/** The seed's metric: a detailed answer and some key concepts. */
const seedMetric = (_: Example, p: Prediction) =>
  String(p.answer).length > 50 && String(p.key_concepts).length > 10;

/**
 * Proposals say "Elaborate"; a QA prompt gets a long answer when its instruction says so, or when the question is
 * about photosynthesis or the greenhouse effect (so the teacher passes on the one training example).
 */
function responder(r: ScriptedRequest): ScriptedAnswer {
  if (r.outputs.includes('proposed_instruction')) {
    return { proposed_instruction: `Proposed Instruction: "Elaborate (${r.input('tip') ?? 'no tip'})."` };
  }
  if (r.outputs.includes('answer')) {
    const long =
      r.instructions.startsWith('Elaborate') || /photosynthesis|greenhouse/.test(r.input('question') ?? '');
    return {
      reasoning: 'Step by step.',
      answer: long ? `A detailed answer about ${r.input('question')} with plenty of words in it.` : 'Short.',
      key_concepts: 'concepts, more concepts',
      question_type: 'factual',
    };
  }
  return {};
}

function setup(answer: (r: ScriptedRequest) => ScriptedAnswer = responder) {
  const provider = new ScriptedProvider(answer);
  const lm = new LM('openai/gpt-4o-mini', { provider, cacheStore: new MemoryLMCache() });
  return { provider, lm };
}

async function run(
  options: Partial<MiproOptions> = {},
  answer?: (r: ScriptedRequest) => ScriptedAnswer,
  trainset: Example[] = SEED_TRAINSET,
) {
  const { provider, lm } = setup(answer);
  const events: ProgressEvent[] = [];
  const mipro = new MIPROv2({ metric: seedMetric, taskLm: lm, progress: (e) => events.push(e), ...options });
  const result = await mipro.compile(new QAProgram(), { trainset });
  return { result, provider, events };
}

const instructionOf = (r: MiproResult<QAProgram>) => r.program.predict.predict.signature.instructions;

describe('MIPROv2 on the seed (light, four examples)', () => {
  let seed: Awaited<ReturnType<typeof run>>;
  beforeAll(async () => {
    seed = await run();
  });

  it("resolves DSPy's light settings and reports them", () => {
    const { result, events } = seed;
    expect(result.settings).toMatchObject({ trainSize: 1, valSize: 3, numTrials: 10, minibatch: false });
    expect(events.find((e) => e.type === 'plan')).toEqual({
      type: 'plan',
      lines: [
        'num_trials: 10',
        'minibatch: False',
        'num_fewshot_candidates: 6',
        'num_instruct_candidates: 3',
        'valset size: 3',
      ],
      estimatedLmCalls: 48,
    });
    expect(result.trainset.map((e) => e.question)).toEqual(['What is photosynthesis?']);
  });

  it('builds 6 demo sets: none, labeled, then bootstrapped ones carrying augmented demos', () => {
    const sets = result().demoCandidates![0];
    expect(sets).toHaveLength(6);
    expect(sets[0]).toEqual([]);
    expect((sets[1][0] as Example).toDict()).toEqual(SEED_TRAINSET[0].toDict());
    for (const set of sets.slice(2)) {
      expect(set).toHaveLength(1);
      expect(Object.keys((set[0] as Example).toDict())[0]).toBe('augmented');
    }
  });

  it('keeps the original instruction as candidate 0 of 3', () => {
    const [candidates] = result().instructionCandidates;
    expect(candidates).toHaveLength(3);
    expect(candidates[0]).toBe('Answer a question with detailed reasoning.');
    expect(candidates.slice(1).every((c) => c.startsWith('Elaborate ('))).toBe(true);
  });

  it('scores the default first, runs 10 full trials, and returns the best full evaluation', () => {
    const r = result();
    expect(r.trials[0]).toMatchObject({ kind: 'default', n: 0, score: 33.33, full: true });
    expect(r.trials.filter((t) => t.kind === 'trial')).toHaveLength(10);
    expect(r.defaultScore).toBe(33.33);
    expect(r.score).toBe(100);
    expect(r.candidates[0].score).toBe(100);
    // The first trial to reach 100 wins (strict >), and the program carries its instruction and demos.
    const first = r.trials.find((t) => t.score === 100)!;
    expect(r.bestParams).toEqual(first.params);
    expect(instructionOf(r)).toBe(r.instructionCandidates[0][r.bestParams['0_predictor_instruction']]);
    expect(r.program.predict.predict.demos).toEqual(r.demoCandidates![0][r.bestParams['0_predictor_demos']]);
  });

  it("makes no more LM calls than the reference's 48 for four examples (11 of them the prompt model's)", () => {
    const { result: r, provider } = seed;
    expect(r.usage.promptLmCalls).toBe(11);
    expect(r.usage.lmCalls).toBe(provider.calls);
    expect(r.usage.lmCalls).toBeLessThanOrEqual(48);
    expect(r.usage.totalTokens).toBeGreaterThan(0);
  });

  it('is reproducible: same choices, same saved state', async () => {
    const again = await run();
    expect(again.result.trials).toEqual(result().trials);
    expect(again.result.instructionCandidates).toEqual(result().instructionCandidates);
    expect(JSON.stringify(again.result.program.dumpState())).toBe(
      JSON.stringify(result().program.dumpState()),
    );
    const other = await run({ seed: 10 });
    expect(other.result.trials.map((t) => t.params)).not.toEqual(result().trials.map((t) => t.params));
  });

  function result() {
    return seed.result;
  }
});

describe('MIPROv2 selection and stopping', () => {
  it('keeps the unmodified program on a tie', async () => {
    const { result } = await run({}, (r) =>
      r.outputs.includes('answer') ? { answer: 'Short.', key_concepts: 'k' } : responder(r),
    );
    expect(result.score).toBe(0);
    expect(result.bestParams).toEqual({ '0_predictor_instruction': 0, '0_predictor_demos': 0 });
    expect(result.program.predict.predict.signature.instructions).toBe(
      'Answer a question with detailed reasoning.',
    );
    expect(result.program.predict.predict.demos).toEqual([]);
  });

  it('refuses a budget too small to reach a first full evaluation, before any LM call', async () => {
    const { provider, lm } = setup();
    const mipro = new MIPROv2({ metric: seedMetric, taskLm: lm, budget: { maxLmCalls: 10 } });
    await expect(mipro.compile(new QAProgram(), { trainset: SEED_TRAINSET })).rejects.toThrow(
      MiproConfigError,
    );
    await expect(mipro.compile(new QAProgram(), { trainset: SEED_TRAINSET })).rejects.toThrow(
      'raise it to at least 15',
    );
    expect(provider.calls).toBe(0);
  });

  it('stops cleanly at the call budget with the best fully evaluated program', async () => {
    const { result, provider, events } = await run({ budget: { maxLmCalls: 20 } });
    expect(result.stoppedReason).toBe('budget');
    expect(provider.calls).toBeLessThanOrEqual(20);
    expect(result.trials.length).toBeLessThan(11);
    expect(result.trials.some((t) => t.full && t.score === result.score)).toBe(true);
    expect(events.find((e) => e.type === 'stopped')).toMatchObject({ reason: 'budget' });
  });

  it('ends on an LM outage mid-search with the best program so far and the error', async () => {
    let taskCalls = 0;
    const { result } = await run({}, (r) => {
      if (r.outputs.includes('answer') && ++taskCalls > 8) return new LMServerError('upstream down');
      return responder(r);
    });
    expect(result.stoppedReason).toBe('error');
    expect(result.error).toBeInstanceOf(LMServerError);
    expect(result.trials.length).toBeGreaterThanOrEqual(1);
    expect(result.trials.some((t) => t.full && t.score === result.score)).toBe(true);
  });

  it('throws MiproRunError when the LM fails before any full evaluation', async () => {
    const failing = run({}, (r) =>
      r.outputs.includes('proposed_instruction') ? new LMServerError('down') : responder(r),
    );
    await expect(failing).rejects.toBeInstanceOf(MiproRunError);
    await expect(failing).rejects.toThrow('MIPROv2 stopped during instruction proposal');
  });

  it('stops when cancelled', async () => {
    const controller = new AbortController();
    const { result } = await run({
      signal: controller.signal,
      progress: (e) => e.type === 'best' && controller.abort(),
    });
    expect(result.stoppedReason).toBe('abort');
    expect(result.score).toBe(100);
  });

  it('scores a failed evaluation 0 and carries on, as DSPy does', async () => {
    const { result } = await run({ maxErrors: 1 }, (r) =>
      r.outputs.includes('answer') && r.instructions.includes('persona') ? 'unparseable' : responder(r),
    );
    expect(result.stoppedReason).toBeUndefined();
    const failed = result.trials.filter((t) => t.error);
    expect(failed.length).toBeGreaterThan(0);
    for (const t of failed) {
      expect(t.score).toBe(0);
      expect(t.error).toContain('Execution cancelled');
    }
  });
});

describe('MIPROv2 modes', () => {
  it('zero-shot: 6 instructions, 9 trials, no demo dimension, demos left empty', async () => {
    const { result } = await run({ maxBootstrappedDemos: 0, maxLabeledDemos: 0 });
    expect(result.demoCandidates).toBeNull();
    expect(result.instructionCandidates[0]).toHaveLength(6);
    expect(result.trials.filter((t) => t.kind === 'trial')).toHaveLength(9);
    expect(Object.keys(result.bestParams)).toEqual(['0_predictor_instruction']);
    expect(result.program.predict.predict.demos).toEqual([]);
  });

  it('minibatch (more than 50 validation examples): full evaluations after trials 5 and 10, chosen on them only', async () => {
    const trainset = Array.from({ length: 80 }, (_, i) =>
      new Example({ question: i % 3 ? `Question ${i} about photosynthesis?` : `Question ${i}?` }).withInputs(
        'question',
      ),
    );
    const { result, provider } = await run({}, responder, trainset);
    expect(result.settings).toMatchObject({
      trainSize: 16,
      valSize: 64,
      minibatch: true,
      fullEvalAfter: [5, 10],
    });
    const kinds = result.trials.map((t) => `${t.kind}${t.kind === 'full' ? t.n : ''}`);
    expect(kinds.filter((k) => k.startsWith('full'))).toEqual(['full5', 'full10']);
    expect(result.trials.filter((t) => t.kind === 'trial').every((t) => !t.full)).toBe(true);
    const full = result.trials.filter((t) => t.full);
    expect(full.map((t) => t.score)).toContain(result.score);
    expect(result.score).toBe(Math.max(...full.map((t) => t.score)));
    expect(result.usage.lmCalls).toBe(provider.calls);
    expect(provider.calls).toBeLessThanOrEqual(result.estimate.lmCalls);
  });
});
