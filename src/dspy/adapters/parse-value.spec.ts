/**
 * Expected values and messages below were produced with Python 3.11, pydantic 2.13.4 and DSPy's parse_value.
 */
import { FieldType, t } from '../signatures/field-type';
import { ValidationError } from '../utils/exceptions';
import { PyFloat } from '../utils/python';
import { pyTuple } from '../utils/python-literal';
import { parseValue, validateValue, ValueError } from './parse-value';

const url = (type: string) => `    For further information visit https://errors.pydantic.dev/2.13/v/${type}`;

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

const citation = t.object('Citation', {
  properties: {
    source: { title: 'Source', type: 'string' },
    page: { anyOf: [{ type: 'integer' }, { type: 'null' }], default: null, title: 'Page' },
  },
  required: ['source'],
  title: 'Citation',
  type: 'object',
});
const topic = t.enum('Topic', { SCIENCE: 'science', HISTORY: 'history', OTHER: 'other' });

describe('parseValue: int (pydantic lax)', () => {
  it.each([
    ['7', 7],
    ['3.0', 3], // json → float 3.0 → int
    ['"7"', 7], // json → str "7" → int
    ['1_000', 1000], // not JSON: ast.literal_eval
    ['0x10', 16],
    ['+5', 5],
    ['True', 1], // literal_eval → bool → int (lax)
  ])('%j → %p', (text, expected) => {
    expect(parseValue(text, t.int())).toBe(expected);
  });

  it('rejects a word with pydantic int_parsing text', () => {
    const e = errorOf(() => parseValue('three', t.int()));
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.message).toBe(
      '1 validation error for int\n' +
        "  Input should be a valid integer, unable to parse string as an integer [type=int_parsing, input_value='three', input_type=str]\n" +
        url('int_parsing'),
    );
  });

  it('rejects a fractional float (int_from_float) and infinity (finite_number)', () => {
    expect(errorOf(() => parseValue('3.5', t.int())).message).toContain(
      'Input should be a valid integer, got a number with a fractional part [type=int_from_float, input_value=3.5, input_type=float]',
    );
    expect(errorOf(() => validateValue(Infinity, t.int())).message).toContain(
      'Input should be a finite number [type=finite_number, input_value=inf, input_type=float]',
    );
  });

  it('parses numeric strings the way pydantic-core cleans them', () => {
    expect(validateValue(' 7 ', t.int())).toBe(7);
    expect(validateValue('-007', t.int())).toBe(-7);
    expect(validateValue('3.00', t.int())).toBe(3);
    expect(errorOf(() => validateValue('3.', t.int())).message).toContain('[type=int_parsing');
    expect(errorOf(() => validateValue('1__0', t.int())).message).toContain('[type=int_parsing');
  });

  it('shortens a long input repr to 25 + ... + 24 UTF-8 bytes', () => {
    expect(errorOf(() => validateValue('x'.repeat(60), t.int())).message).toContain(
      `input_value='${'x'.repeat(24)}...${'x'.repeat(23)}', input_type=str]`,
    );
    expect(errorOf(() => validateValue('é'.repeat(30), t.int())).message).toContain(
      `input_value='${'é'.repeat(12)}...${'é'.repeat(11)}', input_type=str]`,
    );
  });
});

describe('parseValue: float and bool', () => {
  it('reads floats from ints, numeric strings and inf', () => {
    expect(parseValue('1.5', t.float())).toBe(1.5);
    expect(parseValue('2', t.float())).toBe(2);
    expect(validateValue(' 1.5 ', t.float())).toBe(1.5);
    expect(validateValue('inf', t.float())).toBe(Infinity);
    expect(validateValue(true, t.float())).toBe(1);
    expect(errorOf(() => validateValue('1,5', t.float())).message).toContain(
      "Input should be a valid number, unable to parse string as a number [type=float_parsing, input_value='1,5', input_type=str]",
    );
  });

  it.each(['True', 'true', 'yes', 'on', 'Y', '1', 't'])('bool %j → true', (text) => {
    expect(parseValue(text, t.bool())).toBe(true);
  });
  it.each(['False', 'false', 'no', 'off', 'n', '0'])('bool %j → false', (text) => {
    expect(parseValue(text, t.bool())).toBe(false);
  });

  it('distinguishes bool_parsing (2, " true") from bool_type (0.5, None)', () => {
    expect(errorOf(() => validateValue(2, t.bool())).message).toContain(
      '[type=bool_parsing, input_value=2, input_type=int]',
    );
    expect(errorOf(() => validateValue(' true', t.bool())).message).toContain(
      "[type=bool_parsing, input_value=' true'",
    );
    expect(errorOf(() => validateValue(0.5, t.bool())).message).toContain(
      'Input should be a valid boolean [type=bool_type, input_value=0.5, input_type=float]',
    );
    expect(validateValue(new PyFloat(1), t.bool())).toBe(true);
    expect(errorOf(() => parseValue('None', t.bool())).message).toContain(
      'input_value=None, input_type=NoneType',
    );
  });
});

describe('parseValue: list and dict', () => {
  it('reads JSON, Python list and tuple literals', () => {
    expect(parseValue('["a", "b"]', t.list(t.str()))).toEqual(['a', 'b']);
    expect(parseValue("['a', 'b']", t.list(t.str()))).toEqual(['a', 'b']);
    expect(parseValue("('a', 'b')", t.list(t.str()))).toEqual(['a', 'b']);
    expect(parseValue("'a', 'b'", t.list(t.str()))).toEqual(['a', 'b']);
  });

  it('is strict about item types (no int → str coercion), with the item index as location', () => {
    expect(errorOf(() => parseValue('[1, "a"]', t.list(t.str()))).message).toBe(
      '1 validation error for list[str]\n0\n' +
        '  Input should be a valid string [type=string_type, input_value=1, input_type=int]\n' +
        url('string_type'),
    );
  });

  it('reports every failing item', () => {
    expect(errorOf(() => validateValue(['a', 2, 'b'], t.list(t.int()))).message).toBe(
      '2 validation errors for list[int]\n0\n' +
        "  Input should be a valid integer, unable to parse string as an integer [type=int_parsing, input_value='a', input_type=str]\n" +
        url('int_parsing') +
        '\n2\n' +
        "  Input should be a valid integer, unable to parse string as an integer [type=int_parsing, input_value='b', input_type=str]\n" +
        url('int_parsing'),
    );
  });

  it('rejects prose for a list (list_type)', () => {
    expect(errorOf(() => parseValue('Paris', t.list(t.str()))).message).toContain(
      "Input should be a valid list [type=list_type, input_value='Paris', input_type=str]",
    );
  });

  it('coerces dict values and names the key in errors', () => {
    expect(parseValue('{"a": "1"}', t.dict(t.str(), t.int()))).toEqual({ a: 1 });
    expect(errorOf(() => parseValue('{"a": "x"}', t.dict(t.str(), t.int()))).message).toBe(
      '1 validation error for dict[str,int]\na\n' +
        "  Input should be a valid integer, unable to parse string as an integer [type=int_parsing, input_value='x', input_type=str]\n" +
        url('int_parsing'),
    );
  });
});

describe('parseValue: Literal (DSPy matching, ValueError)', () => {
  const yesNo = t.literal('yes', 'no');

  it.each([
    ['yes', 'yes'],
    [' yes ', 'yes'],
    ["'yes'", 'yes'],
    ['"no"', 'no'],
    ["Literal['yes']", 'yes'],
    ["str['no']", 'no'],
  ])('%j → %j', (text, expected) => {
    expect(parseValue(text, yesNo)).toBe(expected);
  });

  it('raises a ValueError naming the allowed tuple', () => {
    const e = errorOf(() => parseValue('maybe', yesNo));
    expect(e).toBeInstanceOf(ValueError);
    expect(e.name).toBe('ValueError');
    expect(e.message).toBe("'maybe' is not one of ('yes', 'no')");
    expect(errorOf(() => parseValue('x', t.literal('only'))).message).toBe("'x' is not one of ('only',)");
  });

  it('never reads text as a number for an int Literal (only a JSON number matches)', () => {
    expect(errorOf(() => parseValue('1', t.literal(1, 2))).message).toBe("'1' is not one of (1, 2)");
    expect(parseValue(1, t.literal(1, 2))).toBe(1);
  });
});

describe('parseValue: Enum', () => {
  it('matches a member value, then a member name, and returns the value', () => {
    expect(parseValue('science', topic)).toBe('science');
    expect(parseValue('HISTORY', topic)).toBe('history');
  });

  it('raises a ValueError otherwise', () => {
    const e = errorOf(() => parseValue('Science', topic));
    expect(e).toBeInstanceOf(ValueError);
    expect(e.message).toBe('Science is not a valid name or value for the enum Topic');
  });

  it('raises a TypeError for an unhashable JSON value (name lookup hashes it)', () => {
    const e = errorOf(() => parseValue(['science'], topic));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toBe("unhashable type: 'list'");
  });

  it('validates nested enums with pydantic (type=enum)', () => {
    expect(errorOf(() => validateValue(['other', 'art'], t.list(topic))).message).toBe(
      '1 validation error for list[str-enum[Topic]]\n1\n' +
        "  Input should be 'science', 'history' or 'other' [type=enum, input_value='art', input_type=str]\n" +
        url('enum'),
    );
  });
});

describe('parseValue: Optional', () => {
  it('keeps the text "None" as a string for str | None', () => {
    expect(parseValue('None', t.optional(t.str()))).toBe('None');
    expect(parseValue(null, t.optional(t.str()))).toBeNull();
  });

  it('rejects a JSON number for str | None (nullable[str])', () => {
    expect(errorOf(() => parseValue(42, t.optional(t.str()))).message).toBe(
      '1 validation error for nullable[str]\n' +
        '  Input should be a valid string [type=string_type, input_value=42, input_type=int]\n' +
        url('string_type'),
    );
  });

  it('reads None/null for Optional[int]', () => {
    expect(parseValue('None', t.optional(t.int(), 'optional'))).toBeNull();
    expect(parseValue('null', t.optional(t.int(), 'optional'))).toBeNull();
    expect(parseValue('4', t.optional(t.int(), 'optional'))).toBe(4);
  });
});

describe('parseValue: pydantic models from a JSON schema', () => {
  it('fills defaults, coerces fields, drops extra keys and keeps field order', () => {
    const value = parseValue('{"extra": 1, "page": "4", "source": "x"}', citation) as Record<string, unknown>;
    expect(value).toEqual({ source: 'x', page: 4 });
    expect(Object.keys(value)).toEqual(['source', 'page']);
    expect(parseValue('{"source": "x"}', citation)).toEqual({ source: 'x', page: null });
  });

  it('reports a missing required field with the whole input', () => {
    expect(errorOf(() => parseValue('{"page": 4}', citation)).message).toBe(
      '1 validation error for Citation\nsource\n' +
        "  Field required [type=missing, input_value={'page': 4}, input_type=dict]\n" +
        url('missing'),
    );
  });

  it('rejects text that is not a dict (model_type)', () => {
    expect(errorOf(() => parseValue('Smith 2021', citation)).message).toContain(
      "Input should be a valid dictionary or instance of Citation [type=model_type, input_value='Smith 2021', input_type=str]",
    );
  });

  const m: FieldType = t.object('M', {
    $defs: {
      Inner: {
        properties: { k: { title: 'K', type: 'integer' } },
        required: ['k'],
        title: 'Inner',
        type: 'object',
      },
    },
    properties: {
      x: { anyOf: [{ type: 'integer' }, { type: 'string' }], title: 'X' },
      inner: { anyOf: [{ $ref: '#/$defs/Inner' }, { type: 'null' }], default: null },
      tags: { default: [], items: { type: 'string' }, title: 'Tags', type: 'array' },
    },
    required: ['x'],
    title: 'M',
    type: 'object',
  });

  it('resolves $refs and picks union members as pydantic smart mode does', () => {
    expect(validateValue({ x: '7' }, m)).toEqual({ x: '7', inner: null, tags: [] });
    expect(validateValue({ x: new PyFloat(7) }, m)).toEqual({ x: 7, inner: null, tags: [] });
    expect(validateValue({ x: 1, inner: { k: '2' } }, m)).toEqual({ x: 1, inner: { k: 2 }, tags: [] });
  });

  it('locates nested and union errors like pydantic', () => {
    expect(errorOf(() => validateValue({ x: [1] }, m)).message).toBe(
      '2 validation errors for M\nx.int\n' +
        '  Input should be a valid integer [type=int_type, input_value=[1], input_type=list]\n' +
        url('int_type') +
        '\nx.str\n' +
        '  Input should be a valid string [type=string_type, input_value=[1], input_type=list]\n' +
        url('string_type'),
    );
    expect(errorOf(() => validateValue({ x: 1, inner: { k: 'a' }, tags: [1] }, m)).message).toBe(
      '2 validation errors for M\ninner.k\n' +
        "  Input should be a valid integer, unable to parse string as an integer [type=int_parsing, input_value='a', input_type=str]\n" +
        url('int_parsing') +
        '\ntags.0\n' +
        '  Input should be a valid string [type=string_type, input_value=1, input_type=int]\n' +
        url('string_type'),
    );
  });
});

describe('parseValue: str and Any', () => {
  it('gives Python str() of any value for a str field', () => {
    expect(parseValue(42, t.str())).toBe('42');
    expect(parseValue(new PyFloat(3), t.str())).toBe('3.0');
    expect(parseValue(null, t.str())).toBe('None');
    expect(parseValue(true, t.str())).toBe('True');
    expect(parseValue(['a', 'b'], t.str())).toBe("['a', 'b']");
    expect(parseValue({ a: [1e-7, null] }, t.str())).toBe("{'a': [1e-07, None]}");
    expect(parseValue(pyTuple([1]), t.str())).toBe('(1,)');
  });

  it('returns the read value as plain JS for Any', () => {
    expect(parseValue('None', t.any())).toBeNull();
    expect(parseValue('3.0', t.any())).toBe(3);
    expect(parseValue('hello', t.any())).toBe('hello');
    expect(parseValue('(1, 2.0)', t.any())).toEqual([1, 2]);
    expect(parseValue("{'a': 1.0}", t.any())).toEqual({ a: 1 });
  });
});
