/**
 * The JSON parser DSPy's JSONAdapter listener uses to detect the end of a field: `jiter.from_json(data)` and
 * `jiter.from_json(data, partial_mode="trailing-strings")` (jiter's Python defaults: `allow_inf_nan=True`).
 * `JSON.parse` is not a substitute: it accepts lone surrogate escapes and rejects `NaN`/`Infinity`, and it has no
 * partial mode. Objects come back as `Map`s so duplicate keys collapse and insertion order is kept, as in a dict.
 */

export type JiterValue = null | boolean | number | string | JiterValue[] | Map<string, JiterValue>;

type JiterErrorKind =
  | 'EofWhileParsingList'
  | 'EofWhileParsingObject'
  | 'EofWhileParsingString'
  | 'EofWhileParsingValue'
  | 'ExpectedColon'
  | 'ExpectedListCommaOrEnd'
  | 'ExpectedObjectCommaOrEnd'
  | 'ExpectedSomeIdent'
  | 'ExpectedSomeValue'
  | 'InvalidEscape'
  | 'InvalidNumber'
  | 'ControlCharacterWhileParsingString'
  | 'KeyMustBeAString'
  | 'LoneLeadingSurrogateInHexEscape'
  | 'TrailingComma'
  | 'TrailingCharacters'
  | 'UnexpectedEndOfHexEscape'
  | 'RecursionLimitExceeded';

/** What Python sees as the `ValueError` jiter raises. */
export class JiterError extends Error {
  constructor(
    readonly kind: JiterErrorKind,
    readonly index: number,
  ) {
    super(`${kind} at index ${index}`);
  }
}

// jiter's JsonError::allowed_if_partial: the errors a partial parse swallows, keeping what was built so far.
const ALLOWED_IF_PARTIAL: ReadonlySet<JiterErrorKind> = new Set<JiterErrorKind>([
  'EofWhileParsingList',
  'EofWhileParsingObject',
  'EofWhileParsingString',
  'EofWhileParsingValue',
  'ExpectedListCommaOrEnd',
  'ExpectedObjectCommaOrEnd',
]);

const RECURSION_LIMIT = 200;

export type JiterPartialMode = 'off' | 'trailing-strings';

export function jiterFromJson(data: string, partialMode: JiterPartialMode = 'off'): JiterValue {
  return new JiterParser(data, partialMode).parse();
}

class JiterParser {
  private index = 0;
  private recursionLimit = RECURSION_LIMIT;

  constructor(
    private readonly data: string,
    private readonly partialMode: JiterPartialMode,
  ) {}

  parse(): JiterValue {
    const peek = this.peek();
    const value = this.takeValue(peek);
    // Partial mode never calls `finish()`, so text after a closed top-level value is ignored.
    if (this.partialMode === 'off' && this.eatWhitespace() !== undefined) {
      throw new JiterError('TrailingCharacters', this.index);
    }
    return value;
  }

  private fail(kind: JiterErrorKind, index = this.index): never {
    throw new JiterError(kind, index);
  }

  private allowPartial(e: unknown): boolean {
    return this.partialMode !== 'off' && e instanceof JiterError && ALLOWED_IF_PARTIAL.has(e.kind);
  }

  private eatWhitespace(): string | undefined {
    while (this.index < this.data.length) {
      const c = this.data[this.index];
      if (c === ' ' || c === '\r' || c === '\t' || c === '\n') this.index++;
      else return c;
    }
    return undefined;
  }

  private peek(): string {
    const next = this.eatWhitespace();
    if (next === undefined) this.fail('EofWhileParsingValue');
    return next;
  }

  private checkTakeValue(peek: string): JiterValue {
    if (this.recursionLimit === 0) this.fail('RecursionLimitExceeded');
    this.recursionLimit--;
    try {
      return this.takeValue(peek);
    } finally {
      this.recursionLimit++;
    }
  }

  private takeValue(peek: string): JiterValue {
    switch (peek) {
      case 'n':
        this.consumeIdent('ull');
        return null;
      case 't':
        this.consumeIdent('rue');
        return true;
      case 'f':
        this.consumeIdent('alse');
        return false;
      case '"':
        return this.consumeString(this.partialMode === 'trailing-strings');
      case '[':
        return this.takeArray();
      case '{':
        return this.takeObject();
      default:
        return this.takeNumber(peek);
    }
  }

  private takeArray(): JiterValue[] {
    const items: JiterValue[] = [];
    let first: string | undefined;
    try {
      first = this.arrayFirst();
    } catch (e) {
      if (!this.allowPartial(e)) throw e;
      return items;
    }
    if (first === undefined) return items;
    try {
      items.push(this.checkTakeValue(first));
      for (let next = this.arrayStep(); next !== undefined; next = this.arrayStep()) {
        items.push(this.checkTakeValue(next));
      }
    } catch (e) {
      if (!this.allowPartial(e)) throw e;
    }
    return items;
  }

  private takeObject(): Map<string, JiterValue> {
    const dict = new Map<string, JiterValue>();
    try {
      for (let key = this.objectFirst(); key !== undefined; key = this.objectStep()) {
        const value = this.checkTakeValue(this.peek());
        dict.set(key, value);
      }
    } catch (e) {
      if (!this.allowPartial(e)) throw e;
    }
    return dict;
  }

  private arrayFirst(): string | undefined {
    this.index++;
    const next = this.eatWhitespace();
    if (next === undefined) this.fail('EofWhileParsingList');
    if (next === ']') {
      this.index++;
      return undefined;
    }
    return next;
  }

  private arrayStep(): string | undefined {
    const next = this.eatWhitespace();
    if (next === undefined) this.fail('EofWhileParsingList');
    if (next === ',') {
      this.index++;
      const after = this.eatWhitespace();
      if (after === undefined) this.fail('EofWhileParsingValue');
      if (after === ']') this.fail('TrailingComma');
      return after;
    }
    if (next === ']') {
      this.index++;
      return undefined;
    }
    return this.fail('ExpectedListCommaOrEnd');
  }

  private objectFirst(): string | undefined {
    this.index++;
    const next = this.eatWhitespace();
    if (next === undefined) this.fail('EofWhileParsingObject');
    if (next === '"') return this.objectKey();
    if (next === '}') {
      this.index++;
      return undefined;
    }
    return this.fail('KeyMustBeAString');
  }

  private objectStep(): string | undefined {
    const next = this.eatWhitespace();
    if (next === undefined) this.fail('EofWhileParsingObject');
    if (next === ',') {
      this.index++;
      const after = this.eatWhitespace();
      if (after === '"') return this.objectKey();
      if (after === '}') this.fail('TrailingComma');
      if (after === undefined) this.fail('EofWhileParsingValue');
      return this.fail('KeyMustBeAString');
    }
    if (next === '}') {
      this.index++;
      return undefined;
    }
    return this.fail('ExpectedObjectCommaOrEnd');
  }

  private objectKey(): string {
    const key = this.consumeString(false);
    const next = this.eatWhitespace();
    if (next === undefined) this.fail('EofWhileParsingObject');
    if (next !== ':') this.fail('ExpectedColon');
    this.index++;
    return key;
  }

  private consumeIdent(rest: string): void {
    const { data } = this;
    if (data.startsWith(rest, this.index + 1)) {
      this.index += rest.length + 1;
      return;
    }
    let i = this.index + 1;
    for (const c of rest) {
      if (i >= data.length) break;
      if (data[i] !== c) this.fail('ExpectedSomeIdent', i);
      i++;
    }
    this.fail('EofWhileParsingValue', i);
  }

  /** `this.index` is on the opening quote. In trailing-strings mode an unterminated string ends at EOF. */
  private consumeString(allowPartial: boolean): string {
    const { data } = this;
    let out = '';
    let i = this.index + 1;
    let chunkStart = i;
    for (;;) {
      if (i >= data.length) {
        if (!allowPartial) this.fail('EofWhileParsingString', i);
        this.index = i + 1;
        return out + data.slice(chunkStart, i);
      }
      const c = data.charCodeAt(i);
      if (c === 0x22) {
        this.index = i + 1;
        return out + data.slice(chunkStart, i);
      }
      if (c < 0x20) this.fail('ControlCharacterWhileParsingString', i);
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += data.slice(chunkStart, i);
      i++;
      // An escape cut by EOF is an error even in trailing-strings mode.
      if (i >= data.length) this.fail('EofWhileParsingString', i);
      const e = data[i];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const [ch, end] = this.parseEscape(i);
          out += ch;
          i = end;
          break;
        }
        default:
          this.fail('InvalidEscape', i);
      }
      i++;
      chunkStart = i;
    }
  }

  /** `at` is on the `u`; returns the decoded text and the index of the escape's last hex digit. */
  private parseEscape(at: number): [string, number] {
    const { data } = this;
    const [n, end] = this.parseU4(at);
    let index = end;
    if (n >= 0xdc00 && n <= 0xdfff) this.fail('LoneLeadingSurrogateInHexEscape', index);
    if (n < 0xd800 || n > 0xdbff) return [String.fromCharCode(n), index];
    if (index + 2 < data.length) {
      const pair = data.slice(index + 1, index + 3);
      if (pair === '\\u') {
        const [n2, index2] = this.parseU4(index + 2);
        if (n2 < 0xdc00 || n2 > 0xdfff) this.fail('LoneLeadingSurrogateInHexEscape', index2);
        return [String.fromCharCode(n, n2), index2];
      }
      this.fail('UnexpectedEndOfHexEscape', pair.startsWith('\\') ? index + 2 : index + 1);
    }
    const next = data[index + 1];
    if (next === undefined || next === '\\') this.fail('EofWhileParsingString', data.length);
    index += 1;
    return this.fail('UnexpectedEndOfHexEscape', index);
  }

  private parseU4(at: number): [number, number] {
    const { data } = this;
    if (at + 5 > data.length) this.fail('EofWhileParsingString', data.length);
    let n = 0;
    let index = at;
    for (let k = 0; k < 4; k++) {
      index++;
      const hex = parseInt(data[index], 16);
      if (Number.isNaN(hex)) this.fail('InvalidEscape', index);
      n = (n << 4) + hex;
    }
    return [n, index];
  }

  private takeNumber(peek: string): number {
    const isNum = (peek >= '0' && peek <= '9') || peek === '-' || peek === 'I' || peek === 'N';
    try {
      return this.consumeNumber(peek);
    } catch (e) {
      if (!isNum) this.fail('ExpectedSomeValue');
      throw e;
    }
  }

  private consumeNumber(first: string): number {
    const { data } = this;
    const start = this.index;
    if (first === 'N') {
      this.consumeIdent('aN');
      return NaN;
    }
    const positive = first !== '-';
    let i = positive ? start : start + 1;
    const lead = data[i];
    if (lead === undefined) this.fail('EofWhileParsingValue', i);
    if (lead === 'I') {
      this.index = i;
      this.consumeIdent('nfinity');
      return positive ? Infinity : -Infinity;
    }
    if (lead === '0') {
      i++;
      if (isDigit(data[i])) this.fail('InvalidNumber', i);
    } else if (lead >= '1' && lead <= '9') {
      while (isDigit(data[i])) i++;
    } else {
      this.fail('InvalidNumber', i);
    }
    if (data[i] === '.') i = this.consumeDecimal(i + 1);
    else if (data[i] === 'e' || data[i] === 'E') i = this.consumeExponential(i + 1);
    this.index = i;
    return Number(data.slice(start, i));
  }

  private consumeDecimal(i: number): number {
    const { data } = this;
    if (i >= data.length) this.fail('EofWhileParsingValue', i);
    if (!isDigit(data[i])) this.fail('InvalidNumber', i);
    i++;
    while (isDigit(data[i])) i++;
    if (data[i] === 'e' || data[i] === 'E') return this.consumeExponential(i + 1);
    return i;
  }

  private consumeExponential(i: number): number {
    const { data } = this;
    if (data[i] === '-' || data[i] === '+') i++;
    if (i >= data.length) this.fail('EofWhileParsingValue', i);
    if (!isDigit(data[i])) this.fail('InvalidNumber', i);
    i++;
    while (isDigit(data[i])) i++;
    return i;
  }
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}
