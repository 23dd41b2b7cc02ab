import { Example } from '../primitives/example';
import { Module } from '../primitives/module';
import { Prediction } from '../primitives/prediction';
import { LMServerError } from '../utils/exceptions';
import {
  averageMetricLine,
  evaluate,
  EvaluationCancelledError,
  formatResultTable,
  resultTable,
} from './evaluate';
import type { ProgressEvent } from './progress';

/** Answers with the question upper-cased after a short delay; questions starting with "fail" throw. */
class Shout extends Module {
  active = 0;
  maxActive = 0;
  async forward(inputs: Record<string, unknown>): Promise<Prediction> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      await new Promise((r) => setTimeout(r, 5));
      const q = String(inputs.question);
      if (q.startsWith('fail')) throw new Error(`cannot answer ${q}`);
      if (q.startsWith('outage')) throw new LMServerError('upstream down');
      return new Prediction({ answer: q.toUpperCase() });
    } finally {
      this.active--;
    }
  }
}

const ex = (question: string, answer = question.toUpperCase()) =>
  new Example({ question, answer }).withInputs('question');
const exact = (e: Example, p: Prediction) => e.answer === p.answer;

describe('Evaluate', () => {
  it('scores 0–100 with two decimals, runs in parallel up to numThreads, keeps input order', async () => {
    const program = new Shout();
    const devset = [ex('a'), ex('b', 'nope'), ex('c'), ex('d'), ex('e'), ex('f')];
    const result = await evaluate(program, { devset, metric: exact, numThreads: 3 });
    expect(result.score).toBe(83.33);
    expect(result.sum).toBe(5);
    expect(result.results.map((r) => r.prediction.answer)).toEqual(['A', 'B', 'C', 'D', 'E', 'F']);
    expect(result.results.map((r) => r.score)).toEqual([1, 0, 1, 1, 1, 1]);
    expect(program.maxActive).toBe(3);
    expect(averageMetricLine(result.sum, devset.length)).toBe('Average Metric: 5.00 / 6 (83.3%)');
  });

  it('scores a failing example failureScore, keeps it in the denominator, and counts it', async () => {
    const devset = [ex('a'), ex('fail-1'), ex('c')];
    const result = await evaluate(new Shout(), { devset, metric: exact });
    expect(result.score).toBe(66.67);
    expect(result.errors).toBe(1);
    expect(result.results[1]).toMatchObject({ score: 0, value: 0 });
    expect(result.results[1].prediction.toDict()).toEqual({});
    expect(String(result.results[1].error)).toContain('cannot answer fail-1');
    // A metric that throws counts as a failure too.
    const throwing = await evaluate(new Shout(), {
      devset: [ex('a')],
      metric: () => {
        throw new Error('bad metric');
      },
    });
    expect([throwing.score, throwing.errors]).toEqual([0, 1]);
  });

  it("cancels after maxErrors failures with DSPy's message", async () => {
    const devset = [ex('fail-1'), ex('fail-2'), ex('a'), ex('b'), ex('c'), ex('d')];
    await expect(
      evaluate(new Shout(), { devset, metric: exact, maxErrors: 2, numThreads: 1 }),
    ).rejects.toThrow(new EvaluationCancelledError(2));
  });

  it('rethrows a fatal error at once instead of scoring it', async () => {
    const devset = [ex('a'), ex('outage'), ex('b')];
    const run = evaluate(new Shout(), { devset, metric: exact, isFatal: (e) => e instanceof LMServerError });
    await expect(run).rejects.toBeInstanceOf(LMServerError);
    // Without the policy it is an ordinary failure, as in DSPy.
    const plain = await evaluate(new Shout(), { devset, metric: exact });
    expect([plain.score, plain.errors]).toEqual([66.67, 1]);
  });

  it('accepts bool, number and {score} metric values and reports progress', async () => {
    const events: ProgressEvent[] = [];
    const values = [true, 0.5, { score: 0.25 }];
    let i = 0;
    const result = await evaluate(new Shout(), {
      devset: [ex('a'), ex('b'), ex('c')],
      metric: () => values[i++],
      numThreads: 1,
      progress: (e) => events.push(e),
      label: 'dev',
    });
    expect(result.sum).toBe(1.75);
    expect(result.score).toBe(58.33);
    expect(events.map((e) => e.type)).toEqual([
      'eval:start',
      'eval:progress',
      'eval:progress',
      'eval:progress',
      'eval:done',
    ]);
    expect(events[3]).toMatchObject({ done: 3, total: 3, sum: 1.75, errors: 0, label: 'dev' });
  });

  it('refuses an empty devset', async () => {
    await expect(evaluate(new Shout(), { devset: [], metric: exact })).rejects.toThrow('non-empty devset');
  });

  it("builds DSPy's results table: prefixed clashes, the metric column, cells cut at 25 words", async () => {
    const long = Array.from({ length: 30 }, (_, i) => `w${i}`).join(' ');
    const result = await evaluate(new Shout(), {
      devset: [ex('a', 'x'), ex(long)],
      metric: exact,
      numThreads: 1,
    });
    const rows = resultTable(result, exact);
    expect(Object.keys(rows[0])).toEqual(['question', 'example_answer', 'pred_answer', 'exact']);
    expect(rows[0]).toEqual({ question: 'a', example_answer: 'x', pred_answer: 'A', exact: '✔️ [False]' });
    expect(rows[1].exact).toBe('✔️ [True]');
    expect(rows[1].question).toBe(`${long.split(' ').slice(0, 25).join(' ')}...`);
    const text = formatResultTable(rows, 1);
    expect(text.split('\n')[0]).toMatch(/^question +\| example_answer \| pred_answer \| exact$/);
    expect(text).toContain('... 1 more rows not displayed ...');
    const float = resultTable({ ...result, results: [{ ...result.results[0], value: 0.5 }] }, 'f1');
    expect(float[0].f1).toBe('✔️ [0.500]');
  });
});
