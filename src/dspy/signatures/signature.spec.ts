import { annotationName, t } from './field-type';
import { inferPrefix, Signature, SignatureError } from './signature';

describe('inferPrefix', () => {
  it.each([
    ['question', 'Question'],
    ['key_concepts', 'Key Concepts'],
    ['questionType', 'Question Type'],
    ['HTTPStatus', 'HTTP Status'],
    ['user_ID', 'User ID'],
  ])('%s -> %s', (name, prefix) => expect(inferPrefix(name)).toBe(prefix));
});

describe('Signature.parse', () => {
  it('reads names and types and uses DSPy default instructions', () => {
    const sig = Signature.parse('question: str, context: list[str] -> answer: int, ok: bool');
    expect(sig.inputFields.map((f) => [f.name, annotationName(f.type)])).toEqual([
      ['question', 'str'],
      ['context', 'list[str]'],
    ]);
    expect(sig.outputFields.map((f) => annotationName(f.type))).toEqual(['int', 'bool']);
    expect(sig.instructions).toBe(
      'Given the fields `question`, `context`, produce the fields `answer`, `ok`.',
    );
    expect(sig.field('answer')).toMatchObject({ desc: '${answer}', prefix: 'Answer:' });
  });

  it('reads Literal, dict and optional types', () => {
    const sig = Signature.parse(
      "text -> label: Literal['a', 'b'], scores: dict[str, float], note: str | None",
    );
    expect(sig.outputFields.map((f) => annotationName(f.type))).toEqual([
      "Literal['a', 'b']",
      'dict[str, float]',
      'UnionType[str, NoneType]',
    ]);
  });

  it.each([
    ['question answer', /exactly one "->"/],
    ['a -> b -> c', /exactly one "->"/],
    ['question ->', /no output fields/],
    ['question -> answer: Widget', /unknown field type "Widget"/],
    ['1abc -> answer', /not a field name/],
    ['a, , b -> c', /empty field/],
    ['a -> a', /duplicate field name "a"/],
  ])('rejects %j', (text, message) => {
    expect(() => Signature.parse(text)).toThrow(SignatureError);
    expect(() => Signature.parse(text)).toThrow(message);
  });
});

describe('Signature state', () => {
  const sig = Signature.define({
    name: 'S',
    instructions: '\n    Do it.\n  ',
    inputs: { q: { desc: 'the q' } },
    outputs: { a: { type: t.int() } },
  });

  it('cleans instructions like a docstring and dumps positional fields', () => {
    expect(sig.dumpState()).toEqual({
      instructions: 'Do it.',
      fields: [
        { prefix: 'Q:', description: 'the q' },
        { prefix: 'A:', description: '${a}' },
      ],
    });
  });

  it('applies saved prefixes and descriptions by position, keeping names and types', () => {
    const loaded = sig.loadState({
      instructions: 'New.',
      fields: [
        { prefix: 'Q?', description: 'x' },
        { prefix: 'A?', description: 'y' },
      ],
    });
    expect(loaded.instructions).toBe('New.');
    expect(loaded.field('a')).toMatchObject({ prefix: 'A?', desc: 'y', type: { kind: 'int' } });
    expect(sig.field('a')?.prefix).toBe('A:');
  });

  it('rejects a field-count mismatch naming both counts', () => {
    expect(() => sig.loadState({ instructions: 'x', fields: [{ prefix: 'Q:', description: 'q' }] })).toThrow(
      /1 fields but the program's signature has 2 \(q, a\)/,
    );
  });

  it('prepends reasoning as the first output and becomes a StringSignature', () => {
    const ext = sig.prepend('reasoning', 'output', { desc: '${reasoning}' });
    expect(ext.name).toBe('StringSignature');
    expect(ext.toString()).toBe('q -> reasoning, a');
    expect(ext.instructions).toBe('Do it.');
  });
});
