import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkStreamingFixture } from './fixture-check';
import { jiterFromJson, JiterError } from './jiter-json';
import type { StreamResponse } from './messages';
import { createStreamListeners, StreamListener, type StreamAdapter } from './stream-listener';
import { resolvePredictNames, StreamRouter } from './stream-router';

const FIXTURES = path.resolve(__dirname, '../../../../shared/fixtures/dspy/streaming');
const fixtureFiles = fs
  .readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .sort();

function loadFixture(name: string): any {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, name), 'utf8'));
}

type Item = StreamResponse | 'Prediction';

/** The fixture's outputs that a router can produce: StreamResponses and whether the Prediction is yielded. */
function expectedItems(outputs: any[]): Item[] {
  return outputs.flatMap((o): Item[] => {
    if (o.type === 'Prediction') return ['Prediction'];
    if (o.type !== 'StreamResponse') return [];
    return [
      {
        predictName: o.predict_name,
        signatureFieldName: o.signature_field_name,
        chunk: o.chunk,
        isLastChunk: o.is_last_chunk,
      },
    ];
  });
}

function adapterOf(fixture: any): StreamAdapter {
  return String(fixture.adapter).startsWith('JSONAdapter') ? 'json' : 'chat';
}

function listenerFields(fixture: any): { signature_field_name: string; allow_reuse?: boolean }[] {
  if (Array.isArray(fixture.listeners)) return fixture.listeners;
  // chat_status_messages names no listeners; it streams `answer` only.
  const fields = new Set<string>();
  for (const run of fixture.runs) {
    for (const o of run.outputs) if (o.type === 'StreamResponse') fields.add(o.signature_field_name);
  }
  return [...fields].map((f) => ({ signature_field_name: f }));
}

function lmCalls(fixture: any): string[][] {
  return fixture.chunks_fed_per_lm_call ?? [fixture.chunks_fed];
}

async function* asAsync<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

async function collect<T>(gen: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of gen) out.push(item);
  return out;
}

/** One program run, as the service will do it: fresh listeners, one route() per LM call, flush, Prediction. */
async function replayRun(fixture: any, run: any, predictName: (field: string) => string): Promise<Item[]> {
  const adapter = adapterOf(fixture);
  const router = new StreamRouter(
    listenerFields(fixture).map(
      (l) =>
        new StreamListener({
          signatureFieldName: l.signature_field_name,
          predictName: predictName(l.signature_field_name),
          allowReuse: l.allow_reuse ?? false,
          adapter,
        }),
    ),
  );
  const items: Item[] = [];
  for (const chunks of run.litellm_called ? lmCalls(fixture) : []) {
    items.push(...(await collect(router.route(asAsync(chunks), { adapter }))));
  }
  items.push(...router.flush());
  if (router.shouldYieldPrediction(fixture.include_final_prediction_in_output_stream !== false)) {
    items.push('Prediction');
  }
  return items;
}

function predictNameFor(fixture: any): (field: string) => string {
  // Names come from named_predictors(): `predict` for a bare Predict, `predict.predict` inside ChainOfThought.
  return fixture.case === 'streaming/chat_listener_allow_reuse_false'
    ? () => 'predict'
    : () => 'predict.predict';
}

function chunks(items: Item[]): [string, string, boolean][] {
  return items.flatMap((i) => (i === 'Prediction' ? [] : [[i.signatureFieldName, i.chunk, i.isLastChunk]]));
}

describe('streaming fixtures (DSPy 3.3.1 golden outputs)', () => {
  it('finds the fixtures', () => {
    expect(fixtureFiles.length).toBeGreaterThanOrEqual(8);
  });

  describe.each(fixtureFiles)('%s', (file) => {
    const fixture = loadFixture(file);

    const runs: { i: number; run: any }[] = fixture.runs.map((run: any, i: number) => ({ i, run }));
    it.each(runs)(
      'run $i yields the exact StreamResponses, then the Prediction when DSPy does',
      async ({ run }: { run: any }) => {
        const actual = await replayRun(fixture, run, predictNameFor(fixture));
        expect(actual).toEqual(expectedItems(run.outputs));
      },
    );

    it('passes checkStreamingFixture', () => {
      const result = checkStreamingFixture(fixture);
      expect(result.diff).toBeUndefined();
      expect(result.ok).toBe(true);
    });
  });

  it('checkStreamingFixture reports a readable diff on mismatch', () => {
    const fixture = loadFixture('chat_answer_listener.json');
    const tampered = structuredClone(fixture);
    tampered.runs[0].outputs[2].chunk = 'were ';
    const result = checkStreamingFixture(tampered);
    expect(result.ok).toBe(false);
    expect(result.diff).toContain(
      '#2: expected StreamResponse(predict.predict, answer, "were ", last=false)',
    );
    expect(result.diff).toContain('actual   StreamResponse(predict.predict, answer, "are ", last=false)');
  });

  it('checkStreamingFixture rejects an adapter it cannot stream', () => {
    const fixture = { ...loadFixture('chat_answer_listener.json'), adapter: 'XMLAdapter' };
    expect(checkStreamingFixture(fixture)).toEqual({ ok: false, diff: 'unsupported adapter "XMLAdapter"' });
  });
});

describe('StreamListener (ChatAdapter)', () => {
  const answerChunks = (body: (string | null)[]): (string | null)[] => [
    '[[ ',
    '## ',
    'answer ',
    '## ',
    ']]\n',
    ...body,
  ];

  function feed(listener: StreamListener, input: readonly (string | null)[]): StreamResponse[] {
    return input.flatMap((c) => listener.receive(c) ?? []);
  }

  it('streams only after the whole start header, and ends on the next header with an empty last chunk', () => {
    const fixture = loadFixture('chat_answer_listener.json');
    const listener = new StreamListener({ signatureFieldName: 'answer', predictName: 'predict.predict' });
    const out = feed(listener, fixture.chunks_fed);
    expect(out[0]).toEqual({
      predictName: 'predict.predict',
      signatureFieldName: 'answer',
      chunk: 'The ',
      isLastChunk: false,
    });
    expect(out.at(-2)?.chunk).toBe('(winter).\n\n');
    expect(out.at(-1)).toMatchObject({ chunk: '', isLastChunk: true });
    expect(listener).toMatchObject({ streamStart: true, streamEnd: true, cacheHit: false });
  });

  it('holds back chunks that may start a header, then releases them when they cannot', () => {
    const listener = new StreamListener({ signatureFieldName: 'answer', predictName: 'p' });
    expect(feed(listener, answerChunks(['a ', '['])).map((r) => r.chunk)).toEqual(['a ']);
    expect(feed(listener, ['1] b']).map((r) => r.chunk)).toEqual(['[1] b']);
  });

  it('holds at most 10 chunks while they contain "[[ ##", then releases the oldest', () => {
    const listener = new StreamListener({ signatureFieldName: 'answer', predictName: 'p' });
    const xs = Array.from({ length: 11 }, (_, i) => `x${i + 1} `);
    expect(feed(listener, answerChunks(['a ', '[[ ## ', ...xs.slice(0, 9)])).map((r) => r.chunk)).toEqual([
      'a ',
    ]);
    // The 11th held chunk pushes the oldest out, uncut.
    expect(feed(listener, [xs[9]]).map((r) => r.chunk)).toEqual(['[[ ## ']);
    // Without "[[ ##" in the queue nothing can form a header any more: everything held goes out at once.
    expect(feed(listener, [xs[10]]).map((r) => r.chunk)).toEqual([xs.join('')]);
    expect(listener.streamEnd).toBe(false);
  });

  it('loses field text from "[[" on when a released queue holds it (DSPy flush quirk)', () => {
    const listener = new StreamListener({ signatureFieldName: 'answer', predictName: 'p' });
    expect(feed(listener, answerChunks(['see ', '[[x]] ok', ' then'])).map((r) => r.chunk)).toEqual([
      'see ',
      ' then',
    ]);
  });

  it('cuts the last chunk at the first "[[" and strips it on the right', () => {
    const listener = new StreamListener({ signatureFieldName: 'answer', predictName: 'p' });
    const out = feed(
      listener,
      answerChunks(['It', ' is', '.', '\n\n[[', ' ## key', '_concepts ## ]]\n', 'x']),
    );
    expect(chunks(out)).toEqual([
      ['answer', 'It', false],
      ['answer', ' is', false],
      ['answer', '.', false],
      ['answer', '', true],
    ]);
  });

  it('keeps text that shares a chunk with the end header', () => {
    const listener = new StreamListener({ signatureFieldName: 'answer', predictName: 'p' });
    const out = feed(listener, answerChunks(['It is', ' done.\n\n[[ ## completed ## ]]']));
    expect(chunks(out)).toEqual([
      ['answer', 'It is', false],
      ['answer', ' done.', true],
    ]);
  });

  it('treats a chunk holding the start header and a following header as a cache hit', () => {
    const fixture = loadFixture('chat_single_chunk_whole_response.json');
    const listener = new StreamListener({ signatureFieldName: 'answer', predictName: 'p' });
    expect(feed(listener, fixture.chunks_fed)).toEqual([]);
    expect(listener).toMatchObject({ cacheHit: true, streamStart: true, streamEnd: true });
    expect(listener.finalize()).toBeNull();
    expect(new StreamRouter([listener]).shouldYieldPrediction(false)).toBe(true);
  });

  it('defers the text after a start header that arrives whole until the next chunk', () => {
    const listener = new StreamListener({ signatureFieldName: 'answer', predictName: 'p' });
    expect(feed(listener, ['[[ ## answer ## ]]\nThe'])).toEqual([]);
    expect(feed(listener, [' seasons']).map((r) => r.chunk)).toEqual(['The seasons']);
  });

  it('forgets a partial header that turns out to be another field', () => {
    const listener = new StreamListener({ signatureFieldName: 'answer', predictName: 'p' });
    expect(feed(listener, ['[[ ', '## ', 'reasoning ', '## ', ']]\n', 'x'])).toEqual([]);
    expect(listener.streamStart).toBe(false);
    expect(feed(listener, answerChunks(['y'])).map((r) => r.chunk)).toEqual(['y']);
  });

  it("ends on a header whose field name is non-ASCII (Python's Unicode \\w)", () => {
    const listener = new StreamListener({ signatureFieldName: 'answer', predictName: 'p' });
    const out = feed(listener, answerChunks(['oui\n\n', '[[ ## réponse ## ]]']));
    expect(chunks(out)).toEqual([
      ['answer', 'oui\n\n', false],
      ['answer', '', true],
    ]);
  });

  it('skips chunks without content', () => {
    const listener = new StreamListener({ signatureFieldName: 'answer', predictName: 'p' });
    expect(feed(listener, [null, ...answerChunks(['a', null, 'b'])]).map((r) => r.chunk)).toEqual(['a', 'b']);
    expect(listener.receive(undefined)).toBeNull();
  });

  it('finalize() flushes a held-back tail cut at "[[", and does nothing for a field never started', () => {
    const listener = new StreamListener({ signatureFieldName: 'answer', predictName: 'p' });
    feed(listener, answerChunks(['Hello', ' [[']));
    expect(listener.finalize()).toEqual({
      predictName: 'p',
      signatureFieldName: 'answer',
      chunk: ' ',
      isLastChunk: true,
    });
    expect(listener.finalize()).toBeNull();
    expect(new StreamListener({ signatureFieldName: 'answer' }).finalize()).toBeNull();
  });

  it('strips like Python: U+FEFF is not whitespace, U+001C is', () => {
    const bom = new StreamListener({ signatureFieldName: 'answer', predictName: 'p' });
    // "\ufeff[" still ends with "[" after strip(); "[\ufeff" does not, so it is released at once.
    expect(feed(bom, answerChunks(['a', '[\ufeff'])).map((r) => r.chunk)).toEqual(['a', '[\ufeff']);
    const sep = new StreamListener({ signatureFieldName: 'answer', predictName: 'p' });
    expect(feed(sep, answerChunks(['a', '[\x1c'])).map((r) => r.chunk)).toEqual(['a']);
  });

  describe('allow_reuse', () => {
    const calls: string[][] = loadFixture('chat_listener_allow_reuse_false.json').chunks_fed_per_lm_call;

    it('false: a second call of the predictor in the same run is not streamed', async () => {
      const router = new StreamRouter([
        new StreamListener({ signatureFieldName: 'answer', predictName: 'predict' }),
      ]);
      const out: StreamResponse[] = [];
      for (const call of calls) out.push(...(await collect(router.route(asAsync(call)))));
      out.push(...router.flush());
      expect(out.map((r) => r.chunk)).toEqual(['First ', 'answer ', 'here.\n\n', '']);
    });

    it('true: the listener resets after the field ended and streams the second call too', async () => {
      const router = new StreamRouter([
        new StreamListener({ signatureFieldName: 'answer', predictName: 'predict', allowReuse: true }),
      ]);
      const out: StreamResponse[] = [];
      for (const call of calls) out.push(...(await collect(router.route(asAsync(call)))));
      out.push(...router.flush());
      expect(chunks(out)).toEqual([
        ['answer', 'First ', false],
        ['answer', 'answer ', false],
        ['answer', 'here.\n\n', false],
        ['answer', '', true],
        ['answer', 'Second ', false],
        ['answer', 'answer ', false],
        ['answer', 'here.\n\n', false],
        ['answer', '', true],
      ]);
    });
  });
});

describe('StreamListener (JSONAdapter)', () => {
  function feed(listener: StreamListener, input: readonly string[]): StreamResponse[] {
    return input.flatMap((c) => listener.receive(c) ?? []);
  }

  it('streams raw JSON text and leaks the split next key name (DSPy quirk)', () => {
    const fixture = loadFixture('json_answer_listener.json');
    const listener = new StreamListener({ signatureFieldName: 'answer', predictName: 'p', adapter: 'json' });
    expect(chunks(feed(listener, fixture.chunks_fed)).slice(-5)).toEqual([
      ['answer', ' axis', false],
      ['answer', '.","key', false],
      ['answer', '_con', false],
      ['answer', 'cepts', false],
      ['answer', '":', true],
    ]);
  });

  it('cuts before the next key name when that name arrives while the chunks are held back', () => {
    const listener = new StreamListener({ signatureFieldName: 'answer', predictName: 'p', adapter: 'json' });
    const out = feed(listener, ['{"', 'answer', '": "', 'Yes', '.",', '"next":"', 'x']);
    expect(chunks(out)).toEqual([
      ['answer', '"Yes', false],
      ['answer', '.","', true],
    ]);
  });

  it('ends when the object closes, cutting at the last "}"', () => {
    const listener = new StreamListener({ signatureFieldName: 'answer', predictName: 'p', adapter: 'json' });
    const out = feed(listener, ['{"answer":', ' "4', '2"', '}\n']);
    expect(chunks(out)).toEqual([
      ['answer', '"4', false],
      ['answer', '2"', true],
    ]);
  });

  it('has no cache-hit shortcut: a whole response in one chunk just never starts the field', () => {
    const listener = new StreamListener({ signatureFieldName: 'answer', predictName: 'p', adapter: 'json' });
    expect(feed(listener, ['{"reasoning": "r", "answer": "x", "done": "[[ ## y ## ]]"}'])).toEqual([]);
    expect(listener).toMatchObject({ cacheHit: false, streamStart: false });
    expect(new StreamRouter([listener]).shouldYieldPrediction(false)).toBe(true);
  });

  it('can be switched to JSON per call, as after the ChatAdapter fallback', () => {
    const listener = new StreamListener({ signatureFieldName: 'answer', predictName: 'p' });
    const router = new StreamRouter([listener]);
    const out = ['{"answer":', '"ok', '"}'].flatMap((c) => router.receive(c, { adapter: 'json' }));
    expect(chunks(out)).toEqual([
      ['answer', '"ok', false],
      ['answer', '"', true],
    ]);
  });
});

describe('StreamRouter', () => {
  it('gives each request its own listeners, so interleaved requests do not mix (DSPy shares them)', () => {
    const shared = [{ signatureFieldName: 'answer', predictName: 'p' }] as const;
    const a = new StreamRouter(createStreamListeners(shared));
    const b = new StreamRouter(createStreamListeners(shared));
    const callA = ['[[ ## answer ## ]]', '\nA1', ' A2', '\n\n[[ ## completed ## ]]'];
    const callB = ['[[ ', '## answer ## ]]\n', 'B1', ' B2', '\n\n[[ ## completed ## ]]'];
    const outA: StreamResponse[] = [];
    const outB: StreamResponse[] = [];
    for (let i = 0; i < Math.max(callA.length, callB.length); i++) {
      if (callB[i] !== undefined) outB.push(...b.receive(callB[i]));
      if (callA[i] !== undefined) outA.push(...a.receive(callA[i]));
    }
    expect(chunks(outA)).toEqual([
      ['answer', 'A1', false],
      ['answer', ' A2', false],
      ['answer', '', true],
    ]);
    expect(chunks(outB)).toEqual([
      ['answer', 'B1', false],
      ['answer', ' B2', false],
      ['answer', '', true],
    ]);
  });

  it('clone() copies the configuration with fresh state', () => {
    const used = new StreamListener({ signatureFieldName: 'answer', predictName: 'p', allowReuse: true });
    used.receive('[[ ## answer ## ]]\nx\n\n[[ ## completed ## ]]');
    expect(used.cacheHit).toBe(true);
    const fresh = used.clone();
    expect(fresh).not.toBe(used);
    expect(fresh.options).toEqual({
      signatureFieldName: 'answer',
      predictName: 'p',
      allowReuse: true,
      adapter: 'chat',
    });
    expect(fresh).toMatchObject({ streamStart: false, streamEnd: false, cacheHit: false });
    expect(used.clone({ adapter: 'json' }).adapter).toBe('json');
  });

  it('routes a call only to the listeners of the calling predictor, in listener order', () => {
    const router = new StreamRouter([
      new StreamListener({ signatureFieldName: 'answer', predictName: 'first' }),
      new StreamListener({ signatureFieldName: 'answer', predictName: 'second' }),
    ]);
    const call = ['[[ ## answer ## ]]', '\nhi', '\n\n[[ ## completed ## ]]'];
    const out = call.flatMap((c) => router.receive(c, { predictName: 'second' }));
    expect(out.map((r) => r.predictName)).toEqual(['second', 'second']);
    expect(router.listeners[0].streamStart).toBe(false);
  });

  it('yields the Prediction when asked, or when no listener started or one saw a cache hit', () => {
    const started = new StreamRouter([new StreamListener({ signatureFieldName: 'answer' })]);
    expect(started.shouldYieldPrediction(false)).toBe(true);
    started.receive('[[ ## answer ## ]]');
    started.receive('\nx');
    expect(started.shouldYieldPrediction(false)).toBe(false);
    expect(started.shouldYieldPrediction(true)).toBe(true);
    expect(new StreamRouter([]).shouldYieldPrediction(false)).toBe(true);
  });

  it('resolvePredictNames fills names from the predictors and rejects ambiguous or unknown fields', () => {
    const predictors = [
      { name: 'predict.predict', outputFields: ['reasoning', 'answer'] },
      { name: 'judge', outputFields: ['verdict'] },
    ];
    const listeners = createStreamListeners([
      { signatureFieldName: 'answer' },
      { signatureFieldName: 'verdict', predictName: 'explicit' },
    ]);
    resolvePredictNames(listeners, predictors);
    expect(listeners.map((l) => l.predictName)).toEqual(['predict.predict', 'explicit']);

    const twice = [...predictors, { name: 'other', outputFields: ['answer'] }];
    expect(() =>
      resolvePredictNames(createStreamListeners([{ signatureFieldName: 'answer' }]), twice),
    ).toThrow('Signature field answer is not unique in the program');
    expect(() =>
      resolvePredictNames(createStreamListeners([{ signatureFieldName: 'nope' }]), predictors),
    ).toThrow('Signature field nope is not a field of any predictor in the program');
  });
});

describe('jiterFromJson (jiter semantics the JSON listener depends on)', () => {
  const keys = (text: string): string[] => [
    ...(jiterFromJson(text, 'trailing-strings') as Map<string, unknown>).keys(),
  ];

  it('keeps an unterminated string value in trailing-strings mode', () => {
    expect(jiterFromJson('{"a":"x","b":"', 'trailing-strings')).toEqual(
      new Map([
        ['a', 'x'],
        ['b', ''],
      ]),
    );
  });

  it('drops a key until its value has started', () => {
    expect(keys('{"a":"x","b')).toEqual(['a']);
    expect(keys('{"a":"x","b"')).toEqual(['a']);
    expect(keys('{"a":"x","b":')).toEqual(['a']);
    expect(keys('{"a":"x","b": tr')).toEqual(['a']);
    expect(keys('{"a":"x","b": 1')).toEqual(['a', 'b']);
    expect(keys('{"a":"x","b": 1.')).toEqual(['a']);
    expect(keys('{"a":"x","b":"y\\')).toEqual(['a']);
    expect(keys('{"a":"x","b":"\\ud83d')).toEqual(['a']);
  });

  it('keeps partial arrays and objects, and ignores text after a closed value', () => {
    expect(jiterFromJson('{"a":[1,{"b":"c', 'trailing-strings')).toEqual(
      new Map<string, unknown>([['a', [1, new Map([['b', 'c']])]]]) as never,
    );
    expect(keys('{"a":"x"} trailing')).toEqual(['a']);
    expect(keys('{"a":"x" "b":"y"}')).toEqual(['a']);
  });

  it('collapses duplicate keys like a dict', () => {
    expect(keys('{"a":"x","a":"y","b":"')).toEqual(['a', 'b']);
  });

  it('is strict without partial mode, but allows NaN and Infinity', () => {
    expect(() => jiterFromJson('{"a":"x"} x')).toThrow(JiterError);
    expect(() => jiterFromJson('{"a":"x"')).toThrow(JiterError);
    expect(() => jiterFromJson('{"a":"\\udc00"}')).toThrow('LoneLeadingSurrogateInHexEscape');
    expect(() => jiterFromJson('{"a":"\u0001"}')).toThrow('ControlCharacterWhileParsingString');
    expect(() => jiterFromJson('{"a":01}')).toThrow('InvalidNumber');
    expect(() => jiterFromJson('{"a":1,}')).toThrow('TrailingComma');
    expect(jiterFromJson('{"a":NaN,"b":-Infinity,"c":"\\ud83d\\ude00"}')).toEqual(
      new Map<string, unknown>([
        ['a', NaN],
        ['b', -Infinity],
        ['c', '😀'],
      ]) as never,
    );
  });

  it('fails on errors that are not about the input ending, even in partial mode', () => {
    expect(() => jiterFromJson('{"a":"x","b": x', 'trailing-strings')).toThrow('ExpectedSomeValue');
    expect(() => jiterFromJson('{"a":"x","b": tx', 'trailing-strings')).toThrow('ExpectedSomeIdent');
    expect(() => jiterFromJson('{"a" "x"', 'trailing-strings')).toThrow('ExpectedColon');
  });
});
