import { StreamListener, type StreamAdapter } from './stream-listener';
import { StreamRouter } from './stream-router';

/**
 * Checks a golden streaming fixture (`fixtures/dspy/streaming/*.json`) at the listener level: each run gets fresh
 * listeners, its LM calls' chunks go through one StreamRouter, `flush()` runs before the Prediction, and the
 * resulting StreamResponses, plus whether a Prediction is yielded, must equal the fixture's outputs item for item.
 *
 * Not checked here, because they need the program: StatusMessages and their order, the raw ModelResponseStream
 * passthrough when there are no listeners (only its chunk texts are compared with `chunks_fed`), the Prediction's
 * fields, and `predict_name` resolution (taken from the expected outputs).
 */
export function checkStreamingFixture(fixture: any): { ok: boolean; diff?: string } {
  const problems: string[] = [];
  const adapter = adapterOf(fixture?.adapter);
  if (!adapter) return { ok: false, diff: `unsupported adapter ${JSON.stringify(fixture?.adapter)}` };
  if (!Array.isArray(fixture?.runs)) return { ok: false, diff: 'fixture has no runs' };

  const callsPerRun = lmCalls(fixture);
  const specs = listenerSpecs(fixture);
  const includeFinal = fixture.include_final_prediction_in_output_stream !== false;

  fixture.runs.forEach((run: any, runIndex: number) => {
    const expectedOutputs: any[] = Array.isArray(run?.outputs) ? run.outputs : [];
    // A run whose LM call was served from the cache streams no chunks.
    const calls = run?.litellm_called === false ? [] : callsPerRun;

    const router = new StreamRouter(
      specs.map(
        (s) =>
          new StreamListener({
            signatureFieldName: s.signature_field_name,
            predictName: s.predict_name ?? predictNameFromOutputs(expectedOutputs, s.signature_field_name),
            allowReuse: s.allow_reuse ?? false,
            adapter,
          }),
      ),
    );
    const actual: string[] = [];
    for (const chunks of calls) {
      for (const chunk of chunks) actual.push(...router.receive(chunk, { adapter }).map(describeResponse));
    }
    actual.push(...router.flush().map(describeResponse));
    if (router.shouldYieldPrediction(includeFinal)) actual.push('Prediction');

    const expected = expectedOutputs.filter(isListenerLevel).map(describeExpected);
    const diff = diffLines(expected, actual);
    if (diff) problems.push(`run ${runIndex}:\n${diff}`);

    if (Array.isArray(fixture.listeners) && specs.length === 0) {
      const raw = expectedOutputs
        .filter((o) => o?.type === 'ModelResponseStream(raw chunk)')
        .map((o) => o.delta_content);
      const fed = calls.flat();
      const rawDiff = diffLines(fed.map(quote), raw.map(quote));
      if (rawDiff) problems.push(`run ${runIndex} raw chunks (fed vs yielded):\n${rawDiff}`);
    }
  });

  return problems.length === 0
    ? { ok: true }
    : { ok: false, diff: `${fixture.case ?? 'fixture'}\n${problems.join('\n')}` };
}

function adapterOf(name: unknown): StreamAdapter | undefined {
  if (typeof name !== 'string' || name.startsWith('ChatAdapter')) return 'chat';
  if (name.startsWith('JSONAdapter')) return 'json';
  return undefined;
}

/** The fixture's listeners; without a `listeners` entry, one listener per field the fixture streams. */
function listenerSpecs(fixture: any): any[] {
  if (Array.isArray(fixture.listeners)) return fixture.listeners;
  const fields = new Set<string>();
  for (const run of fixture.runs) {
    for (const o of Array.isArray(run?.outputs) ? run.outputs : []) {
      if (o?.type === 'StreamResponse') fields.add(o.signature_field_name);
    }
  }
  return [...fields].map((f) => ({ signature_field_name: f }));
}

function lmCalls(fixture: any): string[][] {
  if (Array.isArray(fixture.chunks_fed_per_lm_call)) return fixture.chunks_fed_per_lm_call;
  if (Array.isArray(fixture.chunks_fed)) return [fixture.chunks_fed];
  return [];
}

function predictNameFromOutputs(outputs: any[], field: string): string | undefined {
  return outputs.find((o) => o?.type === 'StreamResponse' && o.signature_field_name === field)?.predict_name;
}

function isListenerLevel(o: any): boolean {
  return o?.type === 'StreamResponse' || o?.type === 'Prediction';
}

function describeExpected(o: any): string {
  if (o.type === 'Prediction') return 'Prediction';
  return describeResponse({
    predictName: o.predict_name,
    signatureFieldName: o.signature_field_name,
    chunk: o.chunk,
    isLastChunk: o.is_last_chunk,
  });
}

function describeResponse(r: {
  predictName: string;
  signatureFieldName: string;
  chunk: string;
  isLastChunk: boolean;
}): string {
  return `StreamResponse(${r.predictName}, ${r.signatureFieldName}, ${quote(r.chunk)}, last=${r.isLastChunk})`;
}

function quote(s: unknown): string {
  return JSON.stringify(s);
}

/** A line-by-line comparison that shows every differing position, or undefined when equal. */
function diffLines(expected: string[], actual: string[]): string | undefined {
  const n = Math.max(expected.length, actual.length);
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    if (expected[i] === actual[i]) continue;
    lines.push(
      `  #${i}: expected ${expected[i] ?? '(nothing)'}\n       actual   ${actual[i] ?? '(nothing)'}`,
    );
  }
  if (lines.length === 0) return undefined;
  return [`  ${expected.length} expected items, ${actual.length} actual items`, ...lines].join('\n');
}
