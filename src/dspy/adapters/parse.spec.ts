import * as fs from 'node:fs';
import * as path from 'node:path';
import { t } from '../signatures/field-type';
import { AdapterParseError, ValidationError } from '../utils/exceptions';
import { fieldTypeFromFixture } from './fixture-types';
import { OutputFieldSpec, parseChatCompletion, parseJsonCompletion } from './parse';

const FIXTURES = path.resolve(__dirname, '../../../../shared/fixtures/dspy');

interface FixtureFieldJson {
  name: string;
  role: 'input' | 'output';
  type: string;
  type_json_schema?: Record<string, unknown>;
  default?: unknown;
}
interface ParseFixture {
  case: string;
  adapter: 'ChatAdapter' | 'JSONAdapter';
  signature: { fields: FixtureFieldJson[] };
  completion: string;
  ok: boolean;
  parsed?: Record<string, unknown>;
  parsed_python_types?: Record<string, string>;
  error?: { type: string; message: string; adapter_name?: string; parsed_result?: unknown; code?: string };
}

function loadFixtures(folder: string): [string, ParseFixture][] {
  const dir = path.join(FIXTURES, folder);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => [f, JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as ParseFixture]);
}

function outputSpecs(fixture: ParseFixture): OutputFieldSpec[] {
  return fixture.signature.fields
    .filter((f) => f.role === 'output')
    .map((f) => ({
      name: f.name,
      type: fieldTypeFromFixture(f),
      hasDefault: 'default' in f,
      ...('default' in f ? { default: f.default } : {}),
    }));
}

/** The Python type the fixture recorded, checked as far as JS can tell (an integral float reads as an int). */
function expectPythonType(value: unknown, pyType: string): void {
  if (pyType === 'str') expect(typeof value).toBe('string');
  else if (pyType === 'int') expect(Number.isInteger(value)).toBe(true);
  else if (pyType === 'float') expect(typeof value).toBe('number');
  else if (pyType === 'bool') expect(typeof value).toBe('boolean');
  else if (pyType === 'NoneType') expect(value).toBeNull();
  else if (pyType === 'list') expect(Array.isArray(value)).toBe(true);
  else if (pyType === 'dict' || pyType.startsWith('pydantic ')) {
    expect(value !== null && typeof value === 'object' && !Array.isArray(value)).toBe(true);
  } else if (pyType.startsWith('enum ')) expect(['string', 'number']).toContain(typeof value);
  else throw new Error(`unknown python type in fixture: ${pyType}`);
}

const parsers = { ChatAdapter: parseChatCompletion, JSONAdapter: parseJsonCompletion };

describe.each([['chat_adapter_parse'], ['json_adapter_parse']])('golden fixtures %s', (folder) => {
  const fixtures = loadFixtures(folder);

  it('has fixtures to check', () => {
    expect(fixtures.length).toBeGreaterThan(0);
  });

  it.each(fixtures)('%s', (_file, fixture) => {
    const parse = () => parsers[fixture.adapter](outputSpecs(fixture), fixture.completion);
    if (fixture.ok) {
      const parsed = parse();
      expect(parsed).toEqual(fixture.parsed);
      // Key order is the signature's output order.
      expect(Object.keys(parsed)).toEqual(Object.keys(fixture.parsed!));
      for (const [key, pyType] of Object.entries(fixture.parsed_python_types ?? {})) {
        expectPythonType(parsed[key], pyType);
      }
      return;
    }
    let caught: unknown;
    try {
      parse();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(Error);
    const error = caught as Error;
    expect(error.constructor.name).toBe(fixture.error!.type);
    expect(error.name).toBe(fixture.error!.type);
    expect(error.message).toBe(fixture.error!.message);
    if (error instanceof AdapterParseError) {
      expect(error.adapterName).toBe(fixture.error!.adapter_name);
      expect(error.parsedResult).toEqual(fixture.error!.parsed_result);
      expect(error.code).toBe(fixture.error!.code);
    }
  });
});

describe('parseChatCompletion', () => {
  const qa: OutputFieldSpec[] = [
    { name: 'answer', type: t.str() },
    { name: 'n', type: t.int() },
  ];

  it('splits lines the way Python splitlines does (\\r, \\v, \\f, \\x1c-\\x1e, \\x85, \\u2028, \\u2029)', () => {
    for (const sep of ['\r', '\r\n', '\v', '\f', '\x1c', '\x1d', '\x1e', '\x85', '\u2028', '\u2029']) {
      const parsed = parseChatCompletion(qa, `[[ ## answer ## ]]${sep}hi${sep}[[ ## n ## ]]${sep}2`);
      expect(parsed).toEqual({ answer: 'hi', n: 2 });
    }
  });

  it('does not split on \\x1f (not a Python line boundary)', () => {
    const parsed = parseChatCompletion(qa, '[[ ## answer ## ]]\nhi\x1f[[ ## n ## ]] 3\n[[ ## n ## ]]\n2');
    expect(parsed).toEqual({ answer: 'hi\x1f[[ ## n ## ]] 3', n: 2 });
  });

  it('strips values with Python whitespace (\\x1c-\\x1f, \\x85) and keeps U+FEFF', () => {
    const parsed = parseChatCompletion(qa, '[[ ## answer ## ]]\n\x1f\x85 hi \ufeff\n[[ ## n ## ]]\n2');
    expect(parsed.answer).toBe('hi \ufeff');
  });

  it('takes the text after a header on the same line', () => {
    expect(parseChatCompletion(qa, '[[ ## answer ## ]] inline\nmore\n[[ ## n ## ]] 5')).toEqual({
      answer: 'inline\nmore',
      n: 5,
    });
  });

  it('leaks the tail of an indented header into the value (m.end() quirk)', () => {
    const parsed = parseChatCompletion(qa, '      [[ ## answer ## ]]\nx\n[[ ## n ## ]]\n1');
    expect(parsed.answer).toBe('## ]]\nx');
  });

  it('measures the header end in code points, as Python does', () => {
    const spec: OutputFieldSpec[] = [{ name: 'ans𝑥', type: t.str() }];
    expect(parseChatCompletion(spec, '[[ ## ans𝑥 ## ]]tail')).toEqual({ 'ans𝑥': 'tail' });
  });

  it('keeps the first occurrence of a repeated field', () => {
    expect(parseChatCompletion(qa, '[[ ## answer ## ]]\na\n[[ ## n ## ]]\n1\n[[ ## answer ## ]]\nb')).toEqual(
      {
        answer: 'a',
        n: 1,
      },
    );
  });

  it('fills a missing field from its default, or None when the type admits None', () => {
    const specs: OutputFieldSpec[] = [
      { name: 'answer', type: t.str() },
      { name: 'extra', type: t.int(), hasDefault: true, default: 7 },
      { name: 'note', type: t.optional(t.str()) },
    ];
    const parsed = parseChatCompletion(specs, '[[ ## answer ## ]]\nhi');
    expect(parsed).toEqual({ answer: 'hi', extra: 7, note: null });
    expect(Object.keys(parsed)).toEqual(['answer', 'extra', 'note']);
  });

  it('returns keys in signature order whatever the completion order', () => {
    const parsed = parseChatCompletion(qa, '[[ ## n ## ]]\n1\n[[ ## answer ## ]]\na');
    expect(Object.keys(parsed)).toEqual(['answer', 'n']);
  });

  it('wraps a Literal mismatch (a Python ValueError) in AdapterParseError', () => {
    const specs: OutputFieldSpec[] = [{ name: 'label', type: t.literal('yes', 'no') }];
    expect(() => parseChatCompletion(specs, '[[ ## label ## ]]\nmaybe')).toThrow(
      "Failed to parse field label with value maybe from the LM response. Error message: 'maybe' is not one of ('yes', 'no')",
    );
  });

  it('uses the adapter name it is given', () => {
    expect(() => parseChatCompletion(qa, '', 'XMLAdapter')).toThrow('Adapter XMLAdapter failed to parse');
  });
});

describe('parseJsonCompletion', () => {
  const specs: OutputFieldSpec[] = [
    { name: 'answer', type: t.str() },
    { name: 'n', type: t.int() },
  ];

  it('reads a JSON object inside prose and code fences', () => {
    expect(parseJsonCompletion(specs, 'Sure:\n```json\n{"answer": "a", "n": "3"}\n```\nDone.')).toEqual({
      answer: 'a',
      n: 3,
    });
  });

  it('repairs slightly broken JSON (single quotes, unquoted keys, trailing comma, missing brace)', () => {
    expect(parseJsonCompletion(specs, "{answer: 'a', 'n': 2,")).toEqual({ answer: 'a', n: 2 });
  });

  it('gives Python str() of non-string values for str fields', () => {
    const parsed = parseJsonCompletion(specs, '{"answer": {"k": [1.0, true, null, "x"]}, "n": 1}');
    expect(parsed.answer).toBe("{'k': [1.0, True, None, 'x']}");
  });

  it('falls back to the first balanced {...} when the whole text is not an object', () => {
    expect(parseJsonCompletion(specs, '[1, {"answer": "a", "n": 4}]')).toEqual({ answer: 'a', n: 4 });
  });

  it('quotes only the extracted object in a later error, as DSPy rebinds completion', () => {
    let error: unknown;
    try {
      parseJsonCompletion(specs, '[1, {"answer": "a"}]');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AdapterParseError);
    expect((error as AdapterParseError).lmResponse).toBe('{"answer": "a"}');
  });

  it('lets a per-field pydantic error escape unwrapped', () => {
    expect(() => parseJsonCompletion(specs, '{"answer": "a", "n": [1]}')).toThrow(ValidationError);
  });
});

describe('fieldTypeFromFixture', () => {
  it('reads UnionType[X, NoneType] at any depth as X | None', () => {
    expect(fieldTypeFromFixture({ type: 'UnionType[str, NoneType]' })).toEqual(t.optional(t.str()));
    expect(fieldTypeFromFixture({ type: 'list[UnionType[int, NoneType]]' })).toEqual(
      t.list(t.optional(t.int())),
    );
  });

  it('builds enums and models from the schema, including $defs', () => {
    const topic = fieldTypeFromFixture({
      type: 'Topic',
      type_json_schema: { enum: ['science', 'other'], title: 'Topic', type: 'string' },
    });
    expect(topic).toEqual(t.enum('Topic', { SCIENCE: 'science', OTHER: 'other' }));

    const citationDef = {
      properties: { source: { title: 'Source', type: 'string' } },
      required: ['source'],
      title: 'Citation',
      type: 'object',
    };
    const list = fieldTypeFromFixture({
      type: 'list[Citation]',
      type_json_schema: {
        $defs: { Citation: citationDef },
        items: { $ref: '#/$defs/Citation' },
        type: 'array',
      },
    });
    expect(list.kind === 'list' && list.items.kind).toBe('object');
    const specs: OutputFieldSpec[] = [{ name: 'cites', type: list }];
    expect(parseChatCompletion(specs, '[[ ## cites ## ]]\n[{"source": "a", "x": 1}]')).toEqual({
      cites: [{ source: 'a' }],
    });
  });
});
