import { LM } from '../clients/lm';
import { MemoryLMCache } from '../clients/cache';
import { Predict } from '../predict/predict';
import { Example } from '../primitives/example';
import { Module } from '../primitives/module';
import type { Prediction } from '../primitives/prediction';
import { LMServerError } from '../utils/exceptions';
import { settings, type TraceEntry } from '../utils/settings';
import { QAProgram } from '../../program/qa.program';
import { BootstrapFewShot } from './bootstrap-few-shot';
import { ScriptedProvider, type ScriptedAnswer, type ScriptedRequest } from './testing/scripted-provider';

const trainset = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta'].map((w) =>
  new Example({ question: `What is ${w}?`, answer: `${w} is a letter.` }).withInputs('question'),
);

/** Answers QA prompts; a question containing "beta" or "delta" gets a short answer that fails the metric. */
function qaAnswer(r: ScriptedRequest): ScriptedAnswer {
  const q = r.input('question') ?? '';
  const short = /beta|delta/.test(q);
  return {
    reasoning: `Thinking about ${q}`,
    answer: short ? 'Short.' : `A thorough answer to "${q}" that is certainly longer than fifty characters.`,
    key_concepts: 'letters, alphabet',
    question_type: 'factual',
  };
}

const longEnough = (_: Example, p: Prediction) => String(p.answer).length > 50;

function setup(answer: (r: ScriptedRequest) => ScriptedAnswer = qaAnswer) {
  const provider = new ScriptedProvider(answer);
  const lm = new LM('openai/test', { provider, cacheStore: new MemoryLMCache() });
  return { provider, lm, run: <T>(fn: () => Promise<T>) => settings.context({ lm }, fn) };
}

describe('BootstrapFewShot', () => {
  it('turns passing teacher traces into augmented demos (augmented first, reasoning included), then raw ones', async () => {
    const { run } = setup();
    const student = new QAProgram();
    const compiled = await run(() =>
      new BootstrapFewShot({ metric: longEnough, maxBootstrappedDemos: 2, maxLabeledDemos: 4 }).compile(
        student,
        {
          trainset,
        },
      ),
    );
    const demos = compiled.predict.predict.demos as Example[];
    expect(demos).toHaveLength(4);
    expect(Object.keys(demos[0].toDict())).toEqual([
      'augmented',
      'question',
      'reasoning',
      'answer',
      'key_concepts',
      'question_type',
    ]);
    expect(demos[0].toDict()).toMatchObject({
      augmented: true,
      question: 'What is alpha?',
      reasoning: 'Thinking about What is alpha?',
    });
    expect(demos[1].question).toBe('What is gamma?'); // beta failed the metric
    // Raw demos come from the examples not bootstrapped (beta and the untried ones), without the augmented key.
    expect(demos.slice(2).every((d) => !('augmented' in d.toDict()))).toBe(true);
    expect(demos.slice(2).map((d) => d.question)).not.toContain('What is alpha?');
    expect(compiled.compiled).toBe(true);
    expect(student.predict.predict.demos).toEqual([]);
  });

  it('stops at the bootstrap quota and never shows the teacher its own example as a demo', async () => {
    const { provider, run } = setup();
    const bs = new BootstrapFewShot({ metric: longEnough, maxBootstrappedDemos: 2, maxLabeledDemos: 16 });
    await run(() => bs.compile(new QAProgram(), { trainset }));
    // alpha (pass), beta (fail), gamma (pass): 3 teacher runs, then the quota of 2 is met.
    expect(provider.calls).toBe(3);
    expect(bs.stats).toMatchObject({ bootstrapped: 2, attempts: 3, errors: 0, examplesTried: 3 });
    for (const r of provider.requests) {
      const question = r.input('question')!;
      // The teacher has labeled demos (LabeledFewShot over the trainset), minus the example itself.
      expect(r.demos).toBe(5);
      const demoTurns = r.request.messages
        .slice(1, -1)
        .map((m) => m.content)
        .join('\n');
      expect(demoTurns).not.toContain(`[[ ## question ## ]]\n${question}`);
    }
  });

  it('hands the metric the trace, and applies metric_threshold (0 ignored, as in DSPy)', async () => {
    const { run } = setup();
    const traces: TraceEntry[][] = [];
    const graded = (_: Example, p: Prediction, trace?: TraceEntry[]) => {
      traces.push(trace!);
      return String(p.answer).length / 100;
    };
    const strict = await run(() =>
      new BootstrapFewShot({
        metric: graded,
        metricThreshold: 0.5,
        maxBootstrappedDemos: 6,
        maxLabeledDemos: 0,
      }).compile(new QAProgram(), { trainset }),
    );
    expect(strict.predict.predict.demos).toHaveLength(4);
    expect(traces[0]).toHaveLength(1);
    expect(traces[0][0].inputs).toEqual({ question: 'What is alpha?' });
    expect((traces[0][0].predictor as Predict).signature.toString()).toBe(
      'question -> reasoning, answer, key_concepts, question_type',
    );
    // Without a threshold any truthy value passes: "Short." scores 0.06 and still counts.
    const loose = await run(() =>
      new BootstrapFewShot({
        metric: graded,
        metricThreshold: 0,
        maxBootstrappedDemos: 6,
        maxLabeledDemos: 0,
      }).compile(new QAProgram(), { trainset }),
    );
    expect(loose.predict.predict.demos).toHaveLength(6);
  });

  it('retries a failed example in later rounds with a fresh rollout at temperature 1.0', async () => {
    const { provider, run } = setup();
    let failFirst = true;
    const metric = (_: Example, p: Prediction) => {
      const ok = !failFirst && String(p.answer).length > 50;
      failFirst = false;
      return ok;
    };
    const compiled = await run(() =>
      new BootstrapFewShot({ metric, maxBootstrappedDemos: 1, maxLabeledDemos: 0, maxRounds: 3 }).compile(
        new QAProgram(),
        {
          trainset,
        },
      ),
    );
    expect(compiled.predict.predict.demos).toHaveLength(1);
    expect(provider.calls).toBe(2);
    expect(provider.requests[0].request.kwargs.temperature).toBeNull();
    expect(provider.requests[1].request.kwargs).toMatchObject({ temperature: 1, rollout_id: 1 });
  });

  it('counts failures and rethrows at maxErrors; an outage is rethrown at once', async () => {
    const failing = setup(() => new Error('unparseable'));
    const bs = new BootstrapFewShot({ metric: longEnough, maxErrors: 3, maxLabeledDemos: 0 });
    await expect(failing.run(() => bs.compile(new QAProgram(), { trainset }))).rejects.toThrow();
    expect(bs.stats.errors).toBe(3);

    const outage = setup(() => new LMServerError('down'));
    const bs2 = new BootstrapFewShot({ metric: longEnough, maxErrors: 10, maxLabeledDemos: 0 });
    await expect(outage.run(() => bs2.compile(new QAProgram(), { trainset }))).rejects.toBeInstanceOf(
      LMServerError,
    );
    expect(outage.provider.calls).toBe(1);
  });

  it('keeps one demo per predictor per example and maps trace steps to predictor names', async () => {
    class TwoStep extends Module {
      readonly draft = new Predict('question -> draft');
      readonly refine = new Predict('question, draft -> answer');
      async forward(inputs: Record<string, unknown>): Promise<Prediction> {
        const d = await this.draft.call({ question: inputs.question });
        return this.refine.call({ question: inputs.question, draft: d.draft });
      }
    }
    const { run } = setup((r) => ({ draft: `draft of ${r.input('question')}`, answer: 'x'.repeat(60) }));
    const compiled = await run(() =>
      new BootstrapFewShot({ metric: longEnough, maxBootstrappedDemos: 2, maxLabeledDemos: 2 }).compile(
        new TwoStep(),
        {
          trainset,
        },
      ),
    );
    const draft = compiled.draft.demos as Example[];
    const refine = compiled.refine.demos as Example[];
    expect(draft.map((d) => d.toDict())).toEqual([
      { augmented: true, question: 'What is alpha?', draft: 'draft of What is alpha?' },
      { augmented: true, question: 'What is beta?', draft: 'draft of What is beta?' },
    ]);
    expect(refine[0].toDict()).toEqual({
      augmented: true,
      question: 'What is alpha?',
      draft: 'draft of What is alpha?',
      answer: 'x'.repeat(60),
    });
  });

  it('refuses a compiled student and mismatched teachers', async () => {
    const { run } = setup();
    const compiled = await run(() =>
      new BootstrapFewShot({ metric: longEnough }).compile(new QAProgram(), { trainset }),
    );
    await expect(run(() => new BootstrapFewShot().compile(compiled, { trainset }))).rejects.toThrow(
      'Student must be uncompiled.',
    );
    const teacher = new QAProgram();
    teacher.predict.predict.signature = teacher.predict.predict.signature.withInstructions('Other.');
    await expect(
      run(() => new BootstrapFewShot().compile(new QAProgram(), { trainset, teacher })),
    ).rejects.toThrow('Student and teacher must have the same signatures');
  });
});
