/**
 * The optimize and evaluate commands end to end: their main functions, the real `openai` SDK, and the fake
 * OpenAI-compatible upstream on loopback. The upstream answers proposer prompts with instructions and QA prompts
 * with answers whose length depends on the instruction, so the search has something to find.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import {
  estimateMiproCost,
  LM,
  MemoryLMCache,
  OpenAIProvider,
  resolveMiproSettings,
  settings,
} from '../src/dspy';
import { runEvaluate } from '../src/cli/evaluate';
import type { CliIO } from '../src/cli/optimize/io';
import { runOptimize, type OptimizeOutcome } from '../src/cli/optimize';
import { QAProgram } from '../src/program/qa.program';
import {
  dspyCompletionText,
  startFakeOpenAI,
  type FakeAction,
  type FakeOpenAI,
  type FakeRequest,
} from './support/fake-openai';
import { chatCompletion } from './support/qa';
import { createTestApp } from './support/test-app';

const ENV: Record<string, string> = {
  OPENAI_API_KEY: 'sk-test',
  DSPY_MODEL: 'openai/gpt-4o-mini',
  LM_MAX_RETRIES: '0',
  LM_TIMEOUT_MS: '5000',
};
const MANAGED = [...Object.keys(ENV), 'OPENAI_BASE_URL', 'LM_TEMPERATURE', 'LM_MAX_TOKENS', 'LM_PRICES_JSON'];
const ORIGINAL = 'Answer a question with detailed reasoning.';

const TIP_WORDS: [RegExp, string][] = [
  [/persona/, ', speaking as a science teacher'],
  [/creative/, ', creatively'],
  [/clear and concise/, ', concisely'],
  [/informative and descriptive/, ', descriptively'],
  [/high stakes/, ', as if an exam depended on it'],
];

function messages(body: any): { system: string; user: string } {
  const list: { role: string; content: string }[] = body.messages;
  return { system: list[0].content, user: list[list.length - 1].content };
}

/**
 * Instructions from the proposer; a QA answer is detailed for two topics, or when a proposed instruction comes with
 * demos, so the best program needs both an instruction and a demo set from the search.
 */
function responder(req: FakeRequest): FakeAction {
  const { system, user } = messages(req.body);
  if (system.includes('`proposed_instruction`')) {
    const tip = /\[\[ ## tip ## \]\]\n([^\n]*)/.exec(user)?.[1] ?? '';
    const words = TIP_WORDS.find(([re]) => re.test(tip))?.[1] ?? '';
    return `[[ ## proposed_instruction ## ]]\nProposed Instruction: "Answer in depth${words}, naming the key concepts."\n\n[[ ## completed ## ]]`;
  }
  if (system.includes('`question_type`')) {
    const question = /\[\[ ## question ## \]\]\n([\s\S]*?)\n\nRespond with/.exec(user)?.[1] ?? '';
    const withDemos = (req.body.messages as unknown[]).length > 2;
    const deep =
      /photosynthesis|greenhouse/.test(question) || (system.includes('Answer in depth') && withDemos);
    return chatCompletion({
      reasoning: `Thinking about ${question}`,
      answer: deep
        ? `${question} A thorough answer with the mechanism, the causes and the effects.`
        : 'Briefly: yes.',
      key_concepts: 'mechanism, causes, effects',
      question_type: 'factual',
    });
  }
  return dspyCompletionText(req.body);
}

function capture(signal?: AbortSignal) {
  const out = { stdout: '', stderr: '' };
  const io: CliIO = {
    stdout: { write: (s: string) => (out.stdout += s) },
    stderr: { write: (s: string) => (out.stderr += s) },
    signal,
  };
  return { io, out };
}

describe('npm run optimize / evaluate against the fake upstream', () => {
  let upstream: FakeOpenAI;
  let dir: string;
  const saved: Record<string, string | undefined> = {};

  beforeAll(async () => {
    upstream = await startFakeOpenAI({ responder });
    dir = await mkdtemp(join(tmpdir(), 'optimize-e2e-'));
    for (const k of MANAGED) saved[k] = process.env[k];
    for (const k of MANAGED) delete process.env[k];
    Object.assign(process.env, ENV, { OPENAI_BASE_URL: upstream.url });
  });
  afterAll(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    upstream.reset();
    upstream.respondWith(responder);
  });

  const optimize = async (args: string[], signal?: AbortSignal) => {
    const { io, out } = capture(signal);
    const outcome: OptimizeOutcome = await runOptimize(args, io);
    return { ...outcome, ...out, calls: upstream.calls };
  };
  const file = (name: string) => join(dir, name);

  describe('a seeded light run on the seed trainset', () => {
    let first: Awaited<ReturnType<typeof optimize>>;
    let firstBodies: string[];

    beforeAll(async () => {
      upstream.reset();
      first = await optimize(['--seed', '9', '--out', file('first.json')]);
      firstBodies = upstream.requests.map((r) => r.rawBody).sort();
    });

    it('writes the state and reports baseline, optimized score, choices, calls, tokens, cost and time', () => {
      expect(first.stderr).not.toMatch(/^error/m);
      expect(first.code).toBe(0);
      const report = first.report!;
      expect(report).toMatchObject({
        optimizer: 'mipro',
        auto: 'light',
        seed: 9,
        metric: 'seed',
        model: 'openai/gpt-4o-mini',
        trainset: { examples: 4, used: 1 },
        valset: { file: null, used: 3 },
        baselineScore: 33.33,
        optimizedScore: 100,
        trials: 10,
        stoppedReason: null,
      });
      const chosen = report.chosen['predict.predict'];
      expect(chosen.instruction).toMatch(/^Answer in depth/);
      expect(report.tokens.total).toBeGreaterThan(0);
      expect(report.costUsd).toBeGreaterThan(0);
      expect(report.seconds).toBeGreaterThan(0);
      expect(first.stdout).toContain('Optimization report');
      expect(first.stdout).toMatch(/baseline score +33\.33/);
      expect(chosen.demos.length).toBeGreaterThan(0);
      // Progress went to stderr as plain lines (not a terminal).
      expect(first.stderr).toContain('num_trials: 10 / minibatch: False'.split(' / ')[0]);
      expect(first.stderr).toContain('Trial 10/10');
      expect(first.stderr).not.toContain('\r');
    });

    it("makes no more LM calls than the reference's count for four examples", () => {
      const reference = estimateMiproCost(
        resolveMiproSettings({ numPredictors: 1, trainsetSize: 4 }),
      ).lmCalls;
      expect(reference).toBe(48);
      expect(first.report!.lmCalls).toBe(first.calls);
      expect(first.calls).toBeLessThanOrEqual(reference);
      expect(first.report!.promptLmCalls).toBe(11);
    });

    it('is reproducible: the same choices, the same requests and the same file bytes', async () => {
      upstream.reset();
      const second = await optimize(['--seed', '9', '--out', file('second.json')]);
      expect(second.code).toBe(0);
      expect(second.report!.chosen).toEqual(first.report!.chosen);
      expect(upstream.requests.map((r) => r.rawBody).sort()).toEqual(firstBodies);
      expect(await readFile(file('second.json'), 'utf8')).toBe(await readFile(file('first.json'), 'utf8'));
    });

    it("saves DSPy's layout with the augmented demos as DSPy writes them", async () => {
      const state = JSON.parse(await readFile(file('first.json'), 'utf8'));
      expect(Object.keys(state)).toEqual(['predict.predict', 'metadata']);
      expect(state.metadata).toEqual({
        dependency_versions: { python: '3.11', dspy: '3.3.1', cloudpickle: '3.1' },
      });
      const predictor = state['predict.predict'];
      expect(Object.keys(predictor)).toEqual(['traces', 'train', 'demos', 'signature', 'lm']);
      expect(predictor.signature.instructions).toBe(first.report!.chosen['predict.predict'].instruction);
      expect(predictor.demos).toEqual(first.report!.chosen['predict.predict'].demos);
      for (const demo of predictor.demos) {
        if (demo.augmented) expect(Object.keys(demo)[0]).toBe('augmented');
      }
      expect(predictor.lm).toBeNull();
    });

    it('loads into QAProgram, whose prompt then carries the chosen instruction and demos', async () => {
      const program = await new QAProgram().load(file('first.json'));
      const lm = new LM('openai/gpt-4o-mini', {
        provider: new OpenAIProvider({
          apiKey: 'sk-test',
          baseURL: upstream.url,
          timeoutMs: 5000,
          maxRetries: 0,
        }),
        cacheStore: new MemoryLMCache(),
      });
      upstream.reset();
      await settings.context({ lm }, () => program.call({ question: 'What is entropy?' }));
      const body = upstream.requests[0].body;
      const chosen = first.report!.chosen['predict.predict'];
      expect(body.messages[0].content).toContain(
        `In adhering to this structure, your objective is: \n        ${chosen.instruction}`,
      );
      expect(body.messages).toHaveLength(2 + 2 * chosen.demos.length);
      for (const demo of chosen.demos) {
        expect(body.messages.map((m: { content: string }) => m.content).join('\n')).toContain(
          `[[ ## question ## ]]\n${String(demo.question)}`,
        );
      }
    });

    it('loads into the running service through PROGRAM_STATE_PATH, which sends them in its prompts', async () => {
      const app = await createTestApp({ PROGRAM_STATE_PATH: file('first.json') });
      try {
        app.upstream.respondWith(responder);
        const res = await request(app.server)
          .post('/predict')
          .set('content-type', 'application/json')
          .send({ question: `What is optimized state ${Date.now()}?` });
        expect(res.status).toBe(200);
        const health = await request(app.server).get('/health');
        expect(health.body.optimized).toBe(true);
        const chosen = first.report!.chosen['predict.predict'];
        const sent = app.upstream.requests[0].body;
        expect(sent.messages[0].content).toContain(chosen.instruction);
        expect(sent.messages).toHaveLength(2 + 2 * chosen.demos.length);
      } finally {
        await app.close();
      }
    });

    it('scores the saved state with npm run evaluate', async () => {
      const { io, out } = capture();
      const devset = file('dev.jsonl');
      await writeFile(
        devset,
        ['What causes earthquakes?', 'How does a neural network learn?']
          .map((question) => JSON.stringify({ question }))
          .join('\n'),
      );
      const outcome = await runEvaluate(['--state', file('first.json'), '--devset', devset], io);
      expect(outcome).toEqual({ code: 0, score: 100 });
      expect(out.stdout).toContain('Average Metric: 2.00 / 2 (100.0%)');
      expect(out.stdout).toMatch(/^question +\| reasoning +\| answer/m);
      expect(out.stdout).toContain('✔️ [True]');
      const baseline = await runEvaluate(['--state', file('missing.json'), '--devset', devset], capture().io);
      expect(baseline.code).toBe(2);
    });
  });

  describe('bad input fails before any LM call, naming the file and the line or index', () => {
    const cases: [string, string, string | null, RegExp][] = [
      ['a missing file', 'missing.json', null, /missing\.json: cannot read the dataset: no such file/],
      [
        'malformed JSON',
        'broken.json',
        '[\n  {"question": "a"},\n  {"question": "b",}\n]',
        /broken\.json: invalid JSON at line 3/,
      ],
      [
        'an example without the input field',
        'noquestion.json',
        '[{"question": "a"}, {"question": "b"}, {"answer": "c"}]',
        /noquestion\.json: example at index 2: missing the input field "question"/,
      ],
      [
        'a bad JSON Lines record',
        'broken.jsonl',
        '{"question": "a"}\n\n{"question": "b"\n',
        /broken\.jsonl:3: invalid JSON Lines record/,
      ],
      [
        'fewer than two examples for MIPROv2',
        'one.jsonl',
        '{"question": "only one"}\n',
        /one\.jsonl: MIPROv2 needs at least 2 examples when no --valset is given/,
      ],
    ];
    it.each(cases)('%s', async (_name, name, content, message) => {
      if (content !== null) await writeFile(file(name), content);
      const run = await optimize(['--trainset', file(name), '--out', file('never.json')]);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(run.calls).toBe(0);
      expect(existsSync(file('never.json'))).toBe(false);
    });

    it('requires the label the metric compares against', async () => {
      await writeFile(file('nolabels.json'), JSON.stringify([{ question: 'a' }, { question: 'b' }]));
      const run = await optimize(['--trainset', file('nolabels.json'), '--metric', 'exact']);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(
        /index 0: missing the field "answer", which the exact metric compares against/,
      );
      expect(run.calls).toBe(0);
    });

    it('rejects unknown flags and bad values', async () => {
      for (const args of [
        ['--foo'],
        ['--optimizer', 'gepa'],
        ['--auto', 'max'],
        ['--threads', '0'],
        ['--out', 'x.txt'],
        ['--optimizer', 'labeled', '--auto', 'light'],
      ]) {
        const run = await optimize(args);
        expect(run.code).toBe(2);
        expect(run.stderr).toMatch(/^error: /);
      }
      expect(upstream.calls).toBe(0);
    });

    it('refuses a --max-calls budget that cannot reach a first full evaluation', async () => {
      const run = await optimize(['--max-calls', '5', '--out', file('never.json')]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('raise it to at least 15');
      expect(run.calls).toBe(0);
    });
  });

  describe('stopping early', () => {
    it('--max-calls stops cleanly with the best fully evaluated program', async () => {
      const run = await optimize(['--max-calls', '20', '--out', file('budget.json')]);
      expect(run.code).toBe(0);
      // Calls started count against the budget, including ones cancelled when the budget ran out mid-trial.
      expect(run.calls).toBeLessThanOrEqual(run.report!.lmCalls);
      expect(run.report).toMatchObject({ stoppedReason: 'budget', lmCalls: 20 });
      expect(run.report!.note).toContain('the LM call budget was used up');
      expect(run.report!.trials).toBeLessThan(10);
      await expect(new QAProgram().load(file('budget.json'))).resolves.toBeInstanceOf(QAProgram);
    });

    it('an LM outage mid-run ends with a clear error and writes the best fully evaluated program with a note', async () => {
      let qa = 0;
      upstream.respondWith((req) => {
        if (messages(req.body).system.includes('`question_type`') && ++qa > 10) {
          return { type: 'error', status: 503 };
        }
        return responder(req);
      });
      const run = await optimize(['--out', file('outage.json')]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/error: the LM failed mid-run: .*overloaded/);
      expect(run.stderr).toContain('The run was cut short because the LM failed');
      expect(run.report!.stoppedReason).toBe('error');
      const saved = await new QAProgram().load(file('outage.json'));
      expect(saved.predict.predict.signature.instructions).toBe(
        run.report!.chosen['predict.predict'].instruction,
      );
    });

    it('an outage before any full evaluation writes nothing', async () => {
      upstream.respondWith((req) =>
        messages(req.body).system.includes('`proposed_instruction`')
          ? { type: 'error', status: 500 }
          : responder(req),
      );
      const run = await optimize(['--out', file('nothing.json')]);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('before any program was fully evaluated');
      expect(run.stderr).toContain('Nothing was written to');
      expect(existsSync(file('nothing.json'))).toBe(false);
    });
  });

  describe('the other optimizers', () => {
    it('bootstrap: augmented demos from the teacher, scored on the given valset', async () => {
      await writeFile(
        file('val.json'),
        JSON.stringify([{ question: 'What is the greenhouse effect?' }, { question: 'What causes tides?' }]),
      );
      const run = await optimize([
        '--optimizer',
        'bootstrap',
        '--valset',
        file('val.json'),
        '--out',
        file('bootstrap.json'),
      ]);
      expect(run.code).toBe(0);
      const demos = run.report!.chosen['predict.predict'].demos;
      // photosynthesis and greenhouse pass the seed metric with the original instruction.
      expect(demos.filter((d) => d.augmented)).toHaveLength(2);
      expect(run.report!.chosen['predict.predict'].instruction).toBe(ORIGINAL);
      expect(run.report!.valset.used).toBe(2);
      expect(run.report!.baselineScore).toBe(50);
    });

    it('labeled: raw demos, no LM call to compile', async () => {
      const run = await optimize(['--optimizer', 'labeled', '--out', file('labeled.json')]);
      expect(run.code).toBe(0);
      expect(run.report!.chosen['predict.predict'].demos).toHaveLength(4);
      expect(run.report!.note).toContain('Scored on the trainset');
      // Only evaluations: 4 examples with demos, 4 without.
      expect(run.calls).toBe(8);
    });
  });
});
