/**
 * Expectations for `literalEval` and the reprs were checked against CPython 3.11; those for `jsonRepairLoads`
 * follow json_repair's parser logic (the library itself is not installable here).
 */
import { PyFloat } from './python';
import {
  findFirstJsonObject,
  isPySet,
  isPyTuple,
  jsonLoads,
  JSONDecodeError,
  jsonRepairLoads,
  literalEval,
  LiteralEvalError,
  PY_ELLIPSIS,
  PyDict,
  pySet,
  pyTuple,
  pyValueRepr,
  pyValueStr,
  readLmValue,
  toPlainJs,
} from './python-literal';

const repr = (v: unknown) => pyValueRepr(v);

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

describe('jsonLoads (Python json.loads)', () => {
  it('keeps floats apart from ints', () => {
    expect(jsonLoads('3')).toBe(3);
    expect(jsonLoads('3.0')).toEqual(new PyFloat(3));
    expect(jsonLoads('1.5')).toBe(1.5);
    expect(repr(jsonLoads('[1, 1.0, 1e2, -0.0]'))).toBe('[1, 1.0, 100.0, -0.0]');
  });

  it('keeps big ints exact and accepts NaN/Infinity', () => {
    expect(jsonLoads('12345678901234567890')).toBe(12345678901234567890n);
    expect(repr(jsonLoads('[NaN, Infinity, -Infinity]'))).toBe('[nan, inf, -inf]');
  });

  it('rejects what Python rejects', () => {
    for (const text of ['{"a": 1,}', "{'a': 1}", '"a\nb"', '1 2', '', '[1]x', '01']) {
      expect(thrown(() => jsonLoads(text))).toBeInstanceOf(JSONDecodeError);
    }
  });
});

describe('jsonRepairLoads (json_repair.loads)', () => {
  it.each(['three', 'Paris', '- a\n- b', 'None', 'It is 42 degrees.'])(
    '%j holds no JSON container → ""',
    (text) => {
      expect(jsonRepairLoads(text)).toBe('');
    },
  );

  it.each([
    ['{"a": 1,}', "{'a': 1}"],
    ['{a: 1, b: two}', "{'a': 1, 'b': 'two'}"],
    ["{'a': 'b'}", "{'a': 'b'}"],
    ['{"a": [1, 2', "{'a': [1, 2]}"],
    ['{"a": {"b": 1}', "{'a': {'b': 1}}"],
    ['[1, 2,]', '[1, 2]'],
    ["['a', 'b']", "['a', 'b']"],
    ['```json\n{"a": 1}\n```', "{'a': 1}"],
    ['Here you go: {"a": 1} Thanks!', "{'a': 1}"],
    ['{"a": True, "b": FALSE}', "{'a': True, 'b': False}"],
    ['{"a": "He said "hi" to me", "b": 2}', "{'a': 'He said \"hi\" to me', 'b': 2}"],
    ['{"a": "x}', "{'a': 'x'}"],
    ['{"a": 1} // trailing comment', "{'a': 1}"],
    ['{"a": 1.0, "b": .5}', "{'a': 1.0, 'b': 0.5}"],
    ['{\u201ca\u201d: \u201cb\u201d}', "{'a': 'b'}"],
    ["{'a': 'line \n'}", "{'a': 'line'}"],
  ])('%j → %s', (text, expected) => {
    expect(repr(jsonRepairLoads(text))).toBe(expected);
  });

  it('returns valid JSON scalars (json.loads runs first)', () => {
    expect(jsonRepairLoads('"7"')).toBe('7');
    expect(jsonRepairLoads(' true ')).toBe(true);
    expect(jsonRepairLoads('3.0')).toEqual(new PyFloat(3));
  });

  it('keeps the last of several same-shaped elements, and lists different ones', () => {
    expect(repr(jsonRepairLoads('{"a": 1} {"a": 2}'))).toBe("{'a': 2}");
    expect(repr(jsonRepairLoads('[1, 2] [3, 4]'))).toBe('[3, 4]');
    expect(repr(jsonRepairLoads('{"a": 1} {"b": 2}'))).toBe("[{'a': 1}, {'b': 2}]");
  });

  it('does not let a "__proto__" key touch the prototype', () => {
    const value = jsonRepairLoads('{"__proto__": {"polluted": 1}, a: 2') as Record<string, unknown>;
    expect(Object.keys(value)).toEqual(['__proto__', 'a']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('literalEval (ast.literal_eval)', () => {
  it.each([
    ['True', 'True'],
    ['None', 'None'],
    ["'it\\'s'", '"it\'s"'],
    ["'a' 'b'", "'ab'"],
    ["r'a\\nb'", "'a\\\\nb'"],
    ["'\\x41\\u00e9\\101\\q'", "'AéA\\\\q'"],
    ["'''tri\nple'''", "'tri\\nple'"],
    ['(1, 2)', '(1, 2)'],
    ['(1,)', '(1,)'],
    ['()', '()'],
    ['1, 2', '(1, 2)'],
    ['(1)', '1'],
    ['[1, [2, (3,)],]', '[1, [2, (3,)]]'],
    ['{1, 2, 1}', '{1, 2}'],
    ['set()', 'set()'],
    ["{1: 'a', True: 'b'}", "{1: 'b'}"],
    ["{'a': 1.0, 'b': None}", "{'a': 1.0, 'b': None}"],
    ['0x1F', '31'],
    ['0o17', '15'],
    ['0b101', '5'],
    ['1_000', '1000'],
    ['00', '0'],
    ['1.', '1.0'],
    ['.5', '0.5'],
    ['1e5', '100000.0'],
    ['-5', '-5'],
    ['- 3', '-3'],
    ['-(3)', '-3'],
    ['-0.0', '-0.0'],
    ['+5', '5'],
    ['1e400', 'inf'],
    ['99999999999999999999999', '99999999999999999999999'],
    ['3 # comment', '3'],
    ['[1,\n2]', '[1, 2]'],
    ['\n3', '3'],
    ['...', 'Ellipsis'],
  ])('%j → %s', (text, expected) => {
    expect(repr(literalEval(text))).toBe(expected);
  });

  it.each([
    ['x', 'ValueError'],
    ['--3', 'ValueError'],
    ['-(-3)', 'ValueError'],
    ['-True', 'ValueError'],
    ['1+2', 'ValueError'],
    ["f'x'", 'ValueError'],
    ['[x for x in y]', 'ValueError'],
    ['1 2', 'SyntaxError'],
    ['0123', 'SyntaxError'],
    ["'unterminated", 'SyntaxError'],
    ["'a\nb'", 'SyntaxError'],
    ['3\n4', 'SyntaxError'],
    ['\n  3', 'SyntaxError'],
    ['', 'SyntaxError'],
    ['[1, 2', 'SyntaxError'],
    ['{[1]: 2}', 'TypeError'],
    ['{(1, [2])}', 'TypeError'],
  ])('%j raises %s', (text, pyType) => {
    const error = thrown(() => literalEval(text));
    expect(error).toBeInstanceOf(LiteralEvalError);
    expect((error as LiteralEvalError).pyType).toBe(pyType);
  });

  it('marks tuples and sets, and keeps non-str keys in a PyDict', () => {
    expect(isPyTuple(literalEval('(1, 2)'))).toBe(true);
    expect(isPyTuple(literalEval('[1, 2]'))).toBe(false);
    expect(isPySet(literalEval('{1}'))).toBe(true);
    expect(literalEval('{1: 2}')).toBeInstanceOf(PyDict);
    expect(literalEval("{'a': 2}")).toEqual({ a: 2 });
    expect(literalEval('...')).toBe(PY_ELLIPSIS);
  });
});

describe('readLmValue (json_repair, then literal_eval, then the raw text)', () => {
  it.each([
    ['three', 'three'],
    ['True', true],
    ['None', null],
    ['"7"', '7'],
    ['- a\n- b', '- a\n- b'],
    ["['a', 'b']", ['a', 'b']],
    ['', ''],
  ])('%j → %p', (text, expected) => {
    expect(readLmValue(text)).toEqual(expected);
  });

  it('gives a tuple for a bare Python tuple', () => {
    const value = readLmValue("'a', 'b'");
    expect(isPyTuple(value)).toBe(true);
    expect(value).toEqual(['a', 'b']);
  });
});

describe('findFirstJsonObject (regex \\{(?:[^{}]|(?R))*\\})', () => {
  it.each([
    ['text {"a": {"b": 1}} and {"c": 2}', '{"a": {"b": 1}}'],
    ['{ {a} b', '{a}'],
    ['{"a": "}"}', '{"a": "}'],
    ['}{', null],
    ['no braces', null],
    ['[1, {"x": 1}]', '{"x": 1}'],
  ])('%j → %p', (text, expected) => {
    expect(findFirstJsonObject(text)).toBe(expected);
  });

  it('stays linear on many unmatched braces', () => {
    const text = '{'.repeat(200_000) + '{}';
    const start = Date.now();
    expect(findFirstJsonObject(text)).toBe('{}');
    expect(Date.now() - start).toBeLessThan(1000);
  });
});

describe('Python repr/str of values', () => {
  it('prints containers, floats and strings as Python does', () => {
    expect(repr(pyTuple([1]))).toBe('(1,)');
    expect(repr(pySet([]))).toBe('set()');
    expect(repr(new PyDict([[1, 'a']]))).toBe("{1: 'a'}");
    expect(repr([new PyFloat(1), new PyFloat(1e16), 1e-5, 0.0001, null, true])).toBe(
      '[1.0, 1e+16, 1e-05, 0.0001, None, True]',
    );
    expect(repr('say "hi"')).toBe('\'say "hi"\'');
    expect(repr("it's")).toBe('"it\'s"');
    expect(repr('both \' and "')).toBe("'both \\' and \"'");
    expect(repr('\x00\x7f\x85\xa0\u200b\u2028\ufeff\u{1F600}é')).toBe(
      "'\\x00\\x7f\\x85\\xa0\\u200b\\u2028\\ufeff\u{1F600}é'",
    );
    expect(pyValueStr('plain')).toBe('plain');
    expect(pyValueStr(['plain'])).toBe("['plain']");
  });

  it('toPlainJs drops the Python markers', () => {
    expect(toPlainJs([new PyFloat(2), 3n, new PyDict([[1, pyTuple([1])]])])).toEqual([2, 3, { '1': [1] }]);
  });
});
