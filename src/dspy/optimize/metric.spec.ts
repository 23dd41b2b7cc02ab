import { Example } from '../primitives/example';
import { Prediction } from '../primitives/prediction';
import {
  answerExactMatch,
  answerF1,
  exactMatch,
  metricPasses,
  metricScore,
  normalizeText,
  tokenF1,
} from './metric';

describe('metric values', () => {
  it('turn into evaluation scores like float(value)', () => {
    expect([true, false, 0.25, 3, { score: 0.5 }, null, undefined].map(metricScore)).toEqual([
      1, 0, 0.25, 3, 0.5, 0, 0,
    ]);
  });

  it('pass bootstrapping by truthiness, or by >= threshold when one is set (0 ignored)', () => {
    expect(metricPasses(0.3)).toBe(true);
    expect(metricPasses(0)).toBe(false);
    expect(metricPasses(false)).toBe(false);
    expect(metricPasses({ score: 0 })).toBe(false);
    expect(metricPasses(0.3, 0.5)).toBe(false);
    expect(metricPasses(0.5, 0.5)).toBe(true);
    expect(metricPasses(0.3, 0)).toBe(true);
  });
});

describe("DSPy's answer metrics", () => {
  it('normalize like normalize_text: lower case, no punctuation or articles, single spaces', () => {
    expect(normalizeText('  The  Capital, of France is: PARIS! ')).toBe('capital of france is paris');
    expect(normalizeText('An apple a day')).toBe('apple day');
  });

  it('match exactly after normalisation, and compute token F1', () => {
    expect(exactMatch('Paris.', ['paris'])).toBe(true);
    expect(exactMatch('Paris, France', ['paris'])).toBe(false);
    // pred: [paris, france], gold: [paris] → precision 1/2, recall 1 → F1 2/3.
    expect(tokenF1('Paris, France', ['Paris'])).toBeCloseTo(2 / 3, 12);
    expect(tokenF1('London', ['Paris'])).toBe(0);
    expect(tokenF1('the cat sat', ['cat cat sat'])).toBeCloseTo(0.8, 12);
  });

  it('answer_exact_match and answer F1 read example.answer and pred.answer', () => {
    const example = new Example({ question: 'q', answer: 'Paris' }).withInputs('question');
    expect(answerExactMatch(example, new Prediction({ answer: 'paris' }))).toBe(true);
    expect(answerExactMatch(example, new Prediction({ answer: 'Paris, France' }), undefined, 0.5)).toBe(true);
    expect(answerF1(example, new Prediction({ answer: 'Paris, France' }))).toBeCloseTo(2 / 3, 12);
    // Under bootstrapping (a trace) it is strict: F1 >= 0.66.
    expect(answerF1(example, new Prediction({ answer: 'Paris, France' }), [])).toBe(true);
    expect(answerF1(example, new Prediction({ answer: 'Paris, in France' }), [])).toBe(false);
  });
});
