import { DEFAULT_TRAINSET, parseOptimizeArgs, UsageError } from '../optimize';
import { DatasetError, parseDataset } from './datasets';
import { createProgressRenderer } from './progress';
import { formatReport, type OptimizeReport } from './report';
import { seedMetric } from './metrics';
import { Example, Prediction } from '../../dspy';

const spec = { inputKeys: ['question'] };

describe('optimize arguments', () => {
  it("default to the seed's run", () => {
    expect(parseOptimizeArgs([])).toEqual({
      trainset: DEFAULT_TRAINSET,
      valset: null,
      optimizer: 'mipro',
      auto: 'light',
      metric: 'seed',
      seed: 9,
      threads: 8,
      maxCalls: null,
      out: 'optimized_state.json',
    });
    expect(DEFAULT_TRAINSET).toMatch(/data\/seed-trainset\.json$/);
  });

  it('take exactly the documented flags', () => {
    expect(
      parseOptimizeArgs([
        '--trainset',
        't.jsonl',
        '--valset',
        'v.json',
        '--optimizer',
        'mipro',
        '--auto',
        'heavy',
        '--metric',
        'f1',
        '--seed',
        '0',
        '--threads',
        '2',
        '--max-calls',
        '100',
        '--out',
        'o.json',
      ]),
    ).toMatchObject({
      valset: 'v.json',
      auto: 'heavy',
      metric: 'f1',
      seed: 0,
      threads: 2,
      maxCalls: 100,
      out: 'o.json',
    });
    expect(parseOptimizeArgs(['-h'])).toBe('help');
    for (const bad of [
      ['--lr', '1'],
      ['--seed', 'x'],
      ['--max-calls', '0'],
      ['--metric', 'bleu'],
      ['extra'],
    ]) {
      expect(() => parseOptimizeArgs(bad)).toThrow(UsageError);
    }
  });
});

describe('datasets', () => {
  it('read a JSON array or JSON Lines into Examples with the program inputs', () => {
    const a = parseDataset('a.json', '[{"question": "q1", "answer": "x"}]', spec);
    expect(a[0].inputs().toDict()).toEqual({ question: 'q1' });
    expect(a[0].labels().toDict()).toEqual({ answer: 'x' });
    const b = parseDataset('b.jsonl', '\uFEFF{"question": "q1"}\n\n{"question": "q2"}\n', spec);
    expect(b.map((e) => e.question)).toEqual(['q1', 'q2']);
  });

  it('name the file and the line, column or index of a problem', () => {
    const bad = (text: string) => {
      try {
        parseDataset('d.json', text, spec);
      } catch (e) {
        expect(e).toBeInstanceOf(DatasetError);
        return (e as Error).message;
      }
      throw new Error('expected a DatasetError');
    };
    expect(bad('[\n {"question": "a"},\n {"question" "b"}\n]')).toMatch(
      /^d\.json: invalid JSON at line 3, column 14/,
    );
    expect(bad('[{"question": "a"}')).toMatch(/^d\.json: invalid JSON at line 1/);
    expect(bad('[{"question": "a"}, 3]')).toBe('d.json: example at index 1: expected a JSON object, found 3');
    expect(bad('[{"question": ""}]')).toBe(
      'd.json: example at index 0: the input field "question" must be a non-empty string',
    );
    expect(bad('{"question": "a"}\n[1]')).toBe('d.json: line 2: expected a JSON object, found an array');
    expect(bad('  \n')).toBe('d.json: the dataset is empty');
    expect(bad('[]')).toBe('d.json: the dataset has no examples');
  });
});

describe("the seed's metric", () => {
  it('wants an answer over 50 characters and key concepts over 10', () => {
    const ex = new Example({ question: 'q' }).withInputs('question');
    expect(seedMetric(ex, new Prediction({ answer: 'x'.repeat(51), key_concepts: 'y'.repeat(11) }))).toBe(
      true,
    );
    expect(seedMetric(ex, new Prediction({ answer: 'x'.repeat(50), key_concepts: 'y'.repeat(11) }))).toBe(
      false,
    );
    expect(seedMetric(ex, new Prediction({ answer: 'x'.repeat(51), key_concepts: 'y'.repeat(10) }))).toBe(
      false,
    );
    expect(seedMetric(ex, new Prediction({ answer: 'x'.repeat(51) }))).toBe(false);
  });
});

describe('progress rendering', () => {
  const events = [
    { type: 'phase', phase: 'search', message: 'Finding optimal prompt parameters' },
    { type: 'eval:start', label: 'trial 1/10', total: 3 },
    { type: 'eval:progress', label: 'trial 1/10', done: 2, total: 3, sum: 1, errors: 0 },
    { type: 'eval:done', label: 'trial 1/10', score: 66.67, errors: 0 },
    {
      type: 'trial',
      kind: 'trial',
      n: 1,
      total: 10,
      params: { '0_predictor_instruction': 2, '0_predictor_demos': 5 },
      score: 66.67,
      full: true,
      best: 66.67,
    },
  ] as const;

  it('draws a bar on a terminal', () => {
    let text = '';
    const r = createProgressRenderer({ isTTY: true, columns: 200, write: (s: string) => (text += s) });
    for (const e of events) r(e);
    expect(text).toContain('\r\x1b[2K[################--------] trial 1/10 Average Metric: 1.00 / 2 (50.0%)');
    expect(text).toContain('Trial 1/10: score 66.67 (p0.instruction=2 p0.demos=5); best full score 66.67\n');
  });

  it('writes plain lines otherwise', () => {
    let text = '';
    const r = createProgressRenderer({ write: (s: string) => (text += s) });
    for (const e of events) r(e);
    expect(text).toBe(
      '==> Finding optimal prompt parameters\nTrial 1/10: score 66.67 (p0.instruction=2 p0.demos=5); best full score 66.67\n',
    );
  });
});

describe('the report', () => {
  it('shows scores, the chosen instruction and demos, calls, tokens, cost and time', () => {
    const report: OptimizeReport = {
      optimizer: 'mipro',
      auto: 'light',
      seed: 9,
      metric: 'seed',
      model: 'openai/gpt-4o-mini',
      trainset: { file: 'data/seed-trainset.json', examples: 4, used: 1 },
      valset: { file: null, examples: 3, used: 3 },
      baselineScore: 33.33,
      optimizedScore: 100,
      chosen: {
        'predict.predict': {
          instruction: 'Answer in depth.',
          demos: [{ augmented: true, question: 'What is photosynthesis?', answer: 'a' }],
        },
      },
      trials: 10,
      lmCalls: 30,
      promptLmCalls: 11,
      taskLmCalls: 19,
      failedLmCalls: 0,
      tokens: { prompt: 100, completion: 20, total: 120 },
      costUsd: 0.0001,
      seconds: 1.234,
      out: 'optimized_state.json',
      stoppedReason: null,
      note: null,
    };
    const text = formatReport(report);
    for (const row of [
      /optimizer +MIPROv2 \(auto=light\), seed 9, metric seed/,
      /baseline score +33\.33/,
      /optimized score +100\.00/,
      /instruction \(predict\.predict\) +Answer in depth\./,
      /demos \(predict\.predict\) +1 \(1 bootstrapped, 0 labeled\)/,
      /demo 1 +What is photosynthesis\?/,
      /LM calls +30 \(prompt model 11, task model 19\)/,
      /tokens +120 \(100 prompt, 20 completion\)/,
      /cost +\$0\.000100/,
      /time +1\.23 s/,
      /saved +optimized_state\.json/,
    ]) {
      expect(text).toMatch(row);
    }
  });
});
