import { jiterFromJson } from './jiter-json';
import type { StreamResponse } from './messages';
import { PY_WORD, pyLstrip, pyRstrip, pyStrip } from './py-text';

/** The adapters a listener can parse (DSPy's `ADAPTER_SUPPORT_STREAMING`, minus the XMLAdapter we do not port). */
export type StreamAdapter = 'chat' | 'json';

export interface StreamListenerOptions {
  signatureFieldName: string;
  /** Filled from `named_predictors()` when omitted (see `resolvePredictNames`). */
  predictName?: string;
  /** Stream the field again when the same predictor runs again in the same program run. */
  allowReuse?: boolean;
  /** The adapter that formats the prompt; DSPy reads it from `settings.adapter` on every chunk. */
  adapter?: StreamAdapter;
}

interface AdapterIdentifiers {
  startIdentifier: string;
  startIndicator: string;
  endPatternPrefixes: readonly string[];
  endPatternContains: string;
}

// Any ChatAdapter field header ends the field; the JSONAdapter ends a field by parsing instead.
const CHAT_END_IDENTIFIER = new RegExp(`\\[\\[ ## (${PY_WORD}+) ## \\]\\]`, 'u');

// At most this many chunks are held back while they might still turn into the next field's header.
const MAX_HELD_CHUNKS = 10;

/**
 * DSPy 3.3.1's `dspy.streaming.StreamListener`: turns the raw text chunks of one predictor's LM stream into the
 * chunks of one output field. The state machine is DSPy's, quirks included, because clients see its output verbatim.
 *
 * A listener holds the state of one program run. DSPy shares listener objects between all calls of a streamified
 * program, so concurrent requests corrupt each other's state; here every request gets its own (`clone()`,
 * `createStreamListeners`).
 */
export class StreamListener {
  readonly signatureFieldName: string;
  predictName: string | undefined;
  readonly allowReuse: boolean;
  adapter: StreamAdapter;

  private started = false;
  private ended = false;
  private sawCacheHit = false;

  private fieldStartQueue: string[] = [];
  private fieldEndQueue: string[] = [];
  private jsonAccumulated = '';
  // The adapter of the last chunk, so that finalize() cuts the tail the way that chunk's adapter needs.
  private resolvedAdapter: StreamAdapter | undefined;
  private readonly identifiers: Record<StreamAdapter, AdapterIdentifiers>;

  constructor(options: StreamListenerOptions) {
    this.signatureFieldName = options.signatureFieldName;
    this.predictName = options.predictName;
    this.allowReuse = options.allowReuse ?? false;
    this.adapter = options.adapter ?? 'chat';
    this.identifiers = {
      chat: {
        startIdentifier: `[[ ## ${this.signatureFieldName} ## ]]`,
        startIndicator: '[',
        endPatternPrefixes: ['[', '[[', '[[ ', '[[ #', '[[ ##'],
        endPatternContains: '[[ ##',
      },
      json: {
        startIdentifier: `"${this.signatureFieldName}":`,
        startIndicator: '"',
        endPatternPrefixes: ['"', '",', '" ', '"}'],
        endPatternContains: '}',
      },
    };
  }

  /** The start header was seen (or a cache hit was assumed). */
  get streamStart(): boolean {
    return this.started;
  }

  /** The field ended; without `allowReuse` the listener ignores everything after this. */
  get streamEnd(): boolean {
    return this.ended;
  }

  /** The whole response came in one chunk, so nothing was streamed for the field. */
  get cacheHit(): boolean {
    return this.sawCacheHit;
  }

  get options(): StreamListenerOptions {
    return {
      signatureFieldName: this.signatureFieldName,
      predictName: this.predictName,
      allowReuse: this.allowReuse,
      adapter: this.adapter,
    };
  }

  /** A listener with the same configuration and fresh state: one per request. */
  clone(overrides: Partial<StreamListenerOptions> = {}): StreamListener {
    return new StreamListener({ ...this.options, ...overrides });
  }

  /** Sets the adapter for the following chunks (the JSONAdapter fallback streams its retry as JSON). */
  setAdapter(adapter: StreamAdapter): this {
    this.adapter = adapter;
    return this;
  }

  /**
   * Feeds one chunk's `delta.content`; returns the field text it releases, if any. `null`/`undefined` stand for a
   * chunk without content (a role-only or usage chunk), which DSPy skips after the reuse check.
   */
  receive(
    chunkText: string | null | undefined,
    adapter: StreamAdapter = this.adapter,
  ): StreamResponse | null {
    this.resolvedAdapter = adapter;
    const { startIdentifier, startIndicator } = this.identifiers[adapter];

    if (this.ended) {
      if (!this.allowReuse) return null;
      this.reset();
      this.resolvedAdapter = adapter;
    }

    if (chunkText === null || chunkText === undefined) return null;
    let chunkMessage = chunkText;

    if (chunkMessage && chunkMessage.includes(startIdentifier) && adapter !== 'json') {
      // DSPy's "cache hit" heuristic: the start header and a following header in one chunk means the whole
      // response arrived at once, and nothing is streamed for the field. [fx: chat_single_chunk_whole_response]
      const afterStart = chunkMessage.slice(chunkMessage.indexOf(startIdentifier) + startIdentifier.length);
      if (CHAT_END_IDENTIFIER.test(afterStart)) {
        this.sawCacheHit = true;
        this.started = true;
        this.ended = true;
        return null;
      }
    }

    if (this.fieldStartQueue.length === 0 && !this.started && chunkMessage.includes(startIndicator)) {
      // DSPy defers even a chunk that already holds the whole start header: its text after the header is
      // released together with the next chunk.
      this.fieldStartQueue.push(chunkMessage);
      return null;
    }

    if (this.fieldStartQueue.length > 0 && !this.started) {
      this.fieldStartQueue.push(chunkMessage);
      const concat = this.fieldStartQueue.join('');
      const at = concat.indexOf(startIdentifier);
      if (at !== -1) {
        this.started = true;
        this.fieldStartQueue = [];
        chunkMessage = pyLstrip(concat.slice(at + startIdentifier.length));
        if (adapter === 'json') {
          // The leading "{" lets the partial parser see the next key as a second key of one object.
          this.jsonAccumulated += '{' + startIdentifier;
        }
      } else if (endsWithPrefixOf(pyStrip(concat), startIdentifier)) {
        return null;
      } else {
        this.fieldStartQueue = [];
        return null;
      }
    }

    if (!this.started || !chunkMessage) return null;

    this.fieldEndQueue.push(chunkMessage);
    let token: string | null = null;
    const held = pyStrip(this.fieldEndQueue.join(''));
    if (!this.couldFormEndIdentifier(held, adapter)) {
      token = this.flush(adapter);
    } else if (this.fieldEndQueue.length > MAX_HELD_CHUNKS) {
      token = this.fieldEndQueue.shift() ?? null;
    }

    return adapter === 'json'
      ? this.handleJsonChunk(token, chunkMessage)
      : this.handleChatChunk(token, adapter);
  }

  /**
   * Releases what is still held back once the LM stream is over; DSPy calls it once per program run, right before
   * the final Prediction. Marks the field ended.
   */
  finalize(): StreamResponse | null {
    if (this.ended || !this.started) return null;
    this.ended = true;
    if (this.fieldEndQueue.length > 0) {
      const token = this.flush(this.resolvedAdapter ?? this.adapter);
      if (token) return this.response(token, true);
    }
    return null;
  }

  private reset(): void {
    this.ended = false;
    this.sawCacheHit = false;
    this.fieldStartQueue = [];
    this.fieldEndQueue = [];
    this.jsonAccumulated = '';
    this.started = false;
    this.resolvedAdapter = undefined;
  }

  /**
   * Empties the hold-back queue. For the ChatAdapter everything from the first `[[` on is dropped, even when the
   * queue is released because it cannot form a header (DSPy's `flush`: field text like "[[x]]" is lost there).
   */
  private flush(adapter: StreamAdapter): string {
    const last = this.fieldEndQueue.join('');
    this.fieldEndQueue = [];
    if (adapter === 'json') return last;
    const boundary = last.indexOf('[[');
    return boundary === -1 ? last : last.slice(0, boundary);
  }

  private couldFormEndIdentifier(held: string, adapter: StreamAdapter): boolean {
    const { endPatternPrefixes, endPatternContains } = this.identifiers[adapter];
    return endPatternPrefixes.some((p) => held.endsWith(p)) || held.includes(endPatternContains);
  }

  private handleChatChunk(token: string | null, adapter: StreamAdapter): StreamResponse | null {
    const held = pyStrip(this.fieldEndQueue.join(''));
    if (CHAT_END_IDENTIFIER.test(held)) {
      this.ended = true;
      // A trailing "\n\n" glued to "[[" is dropped, so the last chunk is often "". [fx: chat_status_messages]
      token = pyRstrip((token ?? '') + this.flush(adapter));
    }
    if (token || this.ended) return this.response(token ?? '', this.ended);
    return null;
  }

  private handleJsonChunk(token: string | null, chunkMessage: string): StreamResponse | null {
    this.jsonAccumulated += chunkMessage;
    if (pyRstrip(this.jsonAccumulated).endsWith('}')) {
      if (parsesStrictly(this.jsonAccumulated)) {
        this.ended = true;
        const last = this.flush('json');
        // Python's last[:last.rfind("}")]: when "}" is missing, -1 drops the last character.
        return this.response((token ?? '') + last.slice(0, last.lastIndexOf('}')), true);
      }
    }

    const parsed = tryParse(this.jsonAccumulated);
    if (parsed instanceof Map && parsed.size > 1) {
      // The next key was complete enough to parse, but pieces of its name that were flushed before that leak
      // into this field's stream (`","key`, `_con`, `cepts`, `":`). [fx: json_answer_listener]
      this.ended = true;
      const last = this.flush('json');
      const nextField = [...parsed.keys()].find((k) => k !== this.signatureFieldName) as string;
      // Python's last[:last.find(next)]: when the name is not in the held text, -1 drops the last character.
      token = (token ?? '') + last.slice(0, last.indexOf(nextField));
    }

    if (token || this.ended) return this.response(token ?? '', this.ended);
    return null;
  }

  private response(chunk: string, isLastChunk: boolean): StreamResponse {
    return {
      predictName: this.predictName ?? '',
      signatureFieldName: this.signatureFieldName,
      chunk,
      isLastChunk,
    };
  }
}

/** Fresh listeners for one request from a shared, immutable configuration. */
export function createStreamListeners(options: readonly StreamListenerOptions[]): StreamListener[] {
  return options.map((o) => new StreamListener(o));
}

/** Whether some non-empty suffix of `message` is a prefix of `identifier`. */
function endsWithPrefixOf(message: string, identifier: string): boolean {
  for (let i = message.length - 1; i >= 0; i--) {
    if (identifier.startsWith(message.slice(i))) return true;
  }
  return false;
}

function parsesStrictly(text: string): boolean {
  try {
    jiterFromJson(text);
    return true;
  } catch {
    return false;
  }
}

function tryParse(text: string): unknown {
  try {
    return jiterFromJson(text, 'trailing-strings');
  } catch {
    return undefined;
  }
}
