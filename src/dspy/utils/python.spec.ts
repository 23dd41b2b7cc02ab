import { cleandoc, dedent, PyFloat, pyFloatRepr, pyJsonDumps, pyRepr, pySplitlines, pyStrip } from './python';

describe('python semantics', () => {
  it.each([
    [1, '1.0'],
    [0.1, '0.1'],
    [1e-7, '1e-07'],
    [0.0001, '0.0001'],
    [1e16, '1e+16'],
    [123.456, '123.456'],
    [-2.5, '-2.5'],
    [1.5e300, '1.5e+300'],
  ])('repr(float(%p)) is %s', (x, s) => expect(pyFloatRepr(x)).toBe(s));

  it('strips Python whitespace but not U+FEFF', () => {
    expect(pyStrip('\x1c\x85 a \n')).toBe('a');
    expect(pyStrip('\ufeffa')).toBe('\ufeffa');
  });

  it('splits lines like str.splitlines', () => {
    expect(pySplitlines('a\r\nb\rc\u2028d\n')).toEqual(['a', 'b', 'c', 'd']);
    expect(pySplitlines('')).toEqual([]);
  });

  it('dedents and cleans docstrings', () => {
    expect(dedent('    a\n      b\n\n    c')).toBe('a\n  b\n\nc');
    expect(cleandoc('First.\n    Second\n      third\n')).toBe('First.\nSecond\n  third');
  });

  it('prints values as str() and json.dumps do', () => {
    expect(pyRepr([true, null, "it's", 2, new PyFloat(3)])).toBe(`[True, None, "it's", 2, 3.0]`);
    expect(pyJsonDumps({ a: [1, 2.5], b: 'é' })).toBe('{"a": [1, 2.5], "b": "é"}');
    expect(pyJsonDumps({ a: [], b: {} }, 2)).toBe('{\n  "a": [],\n  "b": {}\n}');
  });
});
