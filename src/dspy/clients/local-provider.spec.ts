import {
  boundSchema,
  chatOutputFields,
  JsonToChatRenderer,
  jsonOutputFields,
  localModelSpec,
} from './local-provider';

describe('local provider (pure parts; the model itself is covered by test/local-model.e2e-spec.ts)', () => {
  it('reads local/ model specs', () => {
    expect(localModelSpec('local//models/a.gguf')).toBe('/models/a.gguf');
    expect(localModelSpec('local/hf:o/r/f.gguf')).toBe('hf:o/r/f.gguf');
    expect(localModelSpec('openai/gpt-4o-mini')).toBeNull();
  });

  it('bounds every string and inlines $refs', () => {
    const schema = boundSchema(
      {
        $defs: { Kind: { enum: ['a', 'b'], type: 'string', title: 'Kind' } },
        type: 'object',
        properties: { answer: { type: 'string', title: 'Answer' }, kind: { $ref: '#/$defs/Kind' } },
        required: ['answer', 'kind'],
      },
      50,
    );
    expect(schema).toEqual({
      type: 'object',
      properties: {
        answer: { type: 'string', maxLength: 50, minLength: 1 },
        kind: { enum: ['a', 'b'], type: 'string' },
      },
      required: ['answer', 'kind'],
    });
  });

  it('finds the ChatAdapter and JSONAdapter output fields in the prompt', () => {
    const chat =
      'x\n\nRespond with the corresponding output fields, starting with the field `[[ ## reasoning ## ]]`, then `[[ ## answer ## ]]`, and then ending with the marker for `[[ ## completed ## ]]`.';
    expect(chatOutputFields([{ role: 'user', content: chat }])).toEqual(['reasoning', 'answer']);
    const json = 'Respond with a JSON object in the following order of fields: `reasoning`, then `answer`.';
    expect(jsonOutputFields([{ role: 'user', content: json }])).toEqual(['reasoning', 'answer']);
    expect(chatOutputFields([{ role: 'user', content: 'hello' }])).toBeNull();
  });

  it('renders streamed JSON as ChatAdapter sections, whatever the chunking', () => {
    const json = JSON.stringify({ reasoning: 'a "q"\nb', answer: 'caf\u00e9 \u2713' }).replace(
      'é',
      '\\u00e9',
    );
    for (const size of [1, 3, 1000]) {
      const r = new JsonToChatRenderer();
      let out = '';
      for (let i = 0; i < json.length; i += size) out += r.push(json.slice(i, i + size));
      out += r.end();
      expect(out).toBe(
        '[[ ## reasoning ## ]]\na "q"\nb\n\n[[ ## answer ## ]]\ncafé ✓\n\n[[ ## completed ## ]]\n',
      );
    }
  });
});
