/**
 * Reading LM text the way DSPy's Python does: `json.loads`, `json_repair.loads` (a port of the heuristics of
 * json_repair 0.5x/0.6x that matter for LM output) and `ast.literal_eval`, plus the Python `repr`/`str` of the
 * values they produce (pydantic error messages and JSONAdapter's `str(value)` print them).
 *
 * Values are plain JS values with a few Python distinctions kept:
 * - a float whose value is integral is a `PyFloat` (`3.0` must stay a float: `str(3.0) == "3.0"`);
 * - an int beyond 2^53 is a `bigint`;
 * - tuples and sets are arrays registered with `pyTuple` / `pySet` (repr `(1, 2)` / `{1, 2}`, type name);
 * - a dict with a non-str key (only `ast.literal_eval` makes one) is a `PyDict`.
 * `toPlainJs` turns such a value into plain JSON-like JS.
 */
import { PyFloat, pyFloatRepr } from './python';

// ---------------------------------------------------------------------------------------------------------------
// Python value model

/** A Python dict whose keys are not all `str` (e.g. `{1: 'a'}` from `ast.literal_eval`). */
export class PyDict {
  constructor(readonly entries: [unknown, unknown][]) {}
}

const TUPLES = new WeakSet<unknown[]>();
const SETS = new WeakSet<unknown[]>();

/** Mark an array as a Python tuple. */
export function pyTuple<T>(items: T[]): T[] {
  TUPLES.add(items);
  return items;
}
/** Mark an array as a Python set (insertion order kept; Python's own order is hash order). */
export function pySet<T>(items: T[]): T[] {
  SETS.add(items);
  return items;
}
export const isPyTuple = (v: unknown): boolean => Array.isArray(v) && TUPLES.has(v);
export const isPySet = (v: unknown): boolean => Array.isArray(v) && SETS.has(v);

/** A str-keyed Python dict held as a plain object. */
export function isPlainDict(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Any Python dict: a plain object or a `PyDict`. */
export function isPyDict(v: unknown): boolean {
  return isPlainDict(v) || v instanceof PyDict;
}

/** The entries of a Python dict value, in insertion order. */
export function dictEntries(v: unknown): [unknown, unknown][] {
  if (v instanceof PyDict) return v.entries;
  return Object.entries(v as Record<string, unknown>);
}

/** Set a key without triggering the `__proto__` setter (an LM may well emit that key). */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

/** Python's `Ellipsis` (`ast.literal_eval("...")`), so that it prints and fails validation as in Python. */
export const PY_ELLIPSIS: unique symbol = Symbol('Ellipsis');

export type PyKind =
  'NoneType' | 'bool' | 'int' | 'float' | 'str' | 'list' | 'tuple' | 'set' | 'dict' | 'ellipsis' | 'object';

export function pyKind(v: unknown): PyKind {
  if (v === null || v === undefined) return 'NoneType';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (v instanceof PyFloat) return 'float';
  if (typeof v === 'string') return 'str';
  if (v === PY_ELLIPSIS) return 'ellipsis';
  if (Array.isArray(v)) return isPyTuple(v) ? 'tuple' : isPySet(v) ? 'set' : 'list';
  if (isPyDict(v)) return 'dict';
  return 'object';
}

/** `type(v).__name__`. */
export const pyTypeName = (v: unknown): string => pyKind(v);

/** The numeric value of a Python int/float/bool, or null for anything else. */
export function pyNumber(v: unknown): number | null {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof PyFloat) return v.value;
  return null;
}

/** Python `==` (so `1 == 1.0 == True`, tuples never equal lists). */
export function pyEquals(a: unknown, b: unknown): boolean {
  const na = pyNumber(a);
  const nb = pyNumber(b);
  if (na !== null || nb !== null) {
    if (typeof a === 'bigint' && typeof b === 'bigint') return a === b;
    return na !== null && nb !== null && na === nb;
  }
  const ka = pyKind(a);
  if (ka !== pyKind(b)) return false;
  switch (ka) {
    case 'NoneType':
      return true;
    case 'str':
      return a === b;
    case 'list':
    case 'tuple': {
      const x = a as unknown[];
      const y = b as unknown[];
      return x.length === y.length && x.every((v, i) => pyEquals(v, y[i]));
    }
    case 'set': {
      const x = a as unknown[];
      const y = b as unknown[];
      return x.length === y.length && x.every((v) => y.some((w) => pyEquals(v, w)));
    }
    case 'dict': {
      const x = dictEntries(a);
      const y = dictEntries(b);
      return (
        x.length === y.length && x.every(([k, v]) => y.some(([k2, v2]) => pyEquals(k, k2) && pyEquals(v, v2)))
      );
    }
    default:
      return a === b;
  }
}

/** Python `repr(value)`. */
export function pyValueRepr(v: unknown): string {
  switch (pyKind(v)) {
    case 'NoneType':
      return 'None';
    case 'bool':
      return v ? 'True' : 'False';
    case 'int':
      return typeof v === 'bigint' ? v.toString() : String(v);
    case 'float':
      return pyFloatRepr(pyNumber(v)!);
    case 'str':
      return pyStringRepr(v as string);
    case 'list':
      return `[${(v as unknown[]).map(pyValueRepr).join(', ')}]`;
    case 'tuple': {
      const items = (v as unknown[]).map(pyValueRepr);
      return items.length === 1 ? `(${items[0]},)` : `(${items.join(', ')})`;
    }
    case 'set': {
      const items = (v as unknown[]).map(pyValueRepr);
      return items.length === 0 ? 'set()' : `{${items.join(', ')}}`;
    }
    case 'ellipsis':
      return 'Ellipsis';
    case 'dict':
      return `{${dictEntries(v)
        .map(([k, val]) => `${pyValueRepr(k)}: ${pyValueRepr(val)}`)
        .join(', ')}}`;
    default:
      return String(v);
  }
}

/** Python `str(value)`: the text itself for a str, `repr` otherwise. */
export function pyValueStr(v: unknown): string {
  return typeof v === 'string' ? v : pyValueRepr(v);
}

const NON_PRINTABLE = /^[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]$/u;

/** Python `repr(str)`, including the `\x..`/`\u....` escapes of non-printable characters. */
export function pyStringRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === quote || ch === '\\') out += '\\' + ch;
    else if (ch === '\t') out += '\\t';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (code < 0x20 || code === 0x7f) out += '\\x' + code.toString(16).padStart(2, '0');
    else if (code < 0x7f || ch === ' ' || !NON_PRINTABLE.test(ch)) out += ch;
    else if (code <= 0xff) out += '\\x' + code.toString(16).padStart(2, '0');
    else if (code <= 0xffff) out += '\\u' + code.toString(16).padStart(4, '0');
    else out += '\\U' + code.toString(16).padStart(8, '0');
  }
  return out + quote;
}

/** Strip the Python markers: PyFloat → number, bigint → number, PyDict → object with `str(key)` keys. */
export function toPlainJs(v: unknown): unknown {
  if (v instanceof PyFloat) return v.value;
  if (v === PY_ELLIPSIS) return '...';
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(toPlainJs);
  if (isPyDict(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, val] of dictEntries(v)) setOwn(out, pyValueStr(k), toPlainJs(val));
    return out;
  }
  return v;
}

/** Python truthiness of a parsed value. */
function pyTruthy(v: unknown): boolean {
  switch (pyKind(v)) {
    case 'NoneType':
      return false;
    case 'bool':
      return v as boolean;
    case 'int':
    case 'float':
      return pyNumber(v) !== 0;
    case 'str':
      return (v as string).length > 0;
    case 'list':
    case 'tuple':
    case 'set':
      return (v as unknown[]).length > 0;
    case 'dict':
      return dictEntries(v).length > 0;
    default:
      return true;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Character classes (Python `str.isspace()` etc., not JS `\s`)

const PY_SPACE = /^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/;
const isSpace = (c: string | undefined): boolean => c !== undefined && PY_SPACE.test(c);
const isAlpha = (c: string | undefined): boolean => c !== undefined && /^\p{L}$/u.test(c);
const isDigit = (c: string | undefined): boolean => c !== undefined && /^\p{Nd}$/u.test(c);
const isAlnum = (c: string | undefined): boolean => c !== undefined && /^[\p{L}\p{N}]$/u.test(c);

/** Python number text → int (number, or bigint past 2^53) or float (PyFloat when integral). */
function intFromDigits(text: string): number | bigint {
  const big = BigInt(text);
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}
function floatValue(x: number): number | PyFloat {
  return Number.isInteger(x) ? new PyFloat(x) : x;
}

// ---------------------------------------------------------------------------------------------------------------
// json.loads (strict, as Python's: NaN/Infinity accepted, floats kept apart from ints)

/** Python `json.JSONDecodeError` (a ValueError). */
export class JSONDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JSONDecodeError';
  }
}

/** Python `json.loads(text)`. Throws `JSONDecodeError`. */
export function jsonLoads(text: string): unknown {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const fail = (what: string): never => {
    throw new JSONDecodeError(`${what}: char ${i}`);
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: Record<string, unknown> = {};
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('Expecting property name enclosed in double quotes');
        const key = string();
        ws();
        if (text[i] !== ':') fail("Expecting ':' delimiter");
        i++;
        setOwn(obj, key, value());
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') {
          i++;
          return obj;
        } else fail("Expecting ',' delimiter");
      }
    }
    if (c === '[') {
      i++;
      const arr: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value());
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') {
          i++;
          return arr;
        } else fail("Expecting ',' delimiter");
      }
    }
    if (c === '"') return string();
    for (const [word, v] of [
      ['null', null],
      ['true', true],
      ['false', false],
      ['NaN', NaN],
      ['Infinity', Infinity],
      ['-Infinity', -Infinity],
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return typeof v === 'number' ? new PyFloat(v) : v;
      }
    }
    const m = /^-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/.exec(text.slice(i));
    if (!m) return fail('Expecting value');
    i += m[0].length;
    return m[1] || m[2] ? floatValue(Number(m[0])) : intFromDigits(m[0]);
  };
  const string = (): string => {
    i++; // opening quote
    let out = '';
    for (;;) {
      const c = text[i];
      if (c === undefined) fail('Unterminated string starting at');
      if (c === '"') {
        i++;
        return out;
      }
      if (c < ' ') fail('Invalid control character at');
      if (c === '\\') {
        const e = text[i + 1];
        const simple: Record<string, string> = {
          '"': '"',
          '\\': '\\',
          '/': '/',
          b: '\b',
          f: '\f',
          n: '\n',
          r: '\r',
          t: '\t',
        };
        if (e !== undefined && e in simple) {
          out += simple[e];
          i += 2;
        } else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
          out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
          i += 6;
        } else fail('Invalid \\escape');
      } else {
        out += c;
        i++;
      }
    }
  };
  const result = value();
  ws();
  if (i < text.length) fail('Extra data');
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// json_repair.loads

const STRING_DELIMITERS = ['"', "'", '\u201c', '\u201d'];
type Ctx = 'OBJECT_KEY' | 'OBJECT_VALUE' | 'ARRAY';
const NUMBER_CHARS = new Set('0123456789-.eE/,');
const INLINE_CLOSERS: Record<string, string> = { '[': ']', '{': '}', '(': ')' };

/**
 * A port of json_repair's `JSONParser` (no schema, no streaming). It works on code points as Python does.
 * Its answer for text holding no JSON container at all is `""` (top-level scalars are not parsed).
 */
class RepairParser {
  private s: string[];
  index = 0;
  private stack: Ctx[] = [];

  constructor(text: string) {
    this.s = Array.from(text);
  }

  private get current(): Ctx | undefined {
    return this.stack[this.stack.length - 1];
  }
  private get emptyContext(): boolean {
    return this.stack.length === 0;
  }
  private setContext(c: Ctx): void {
    this.stack.push(c);
  }
  private resetContext(): void {
    this.stack.pop();
  }

  /** `get_char_at`: Python indexing, so a negative position wraps around. */
  private at(count = 0): string | undefined {
    const i = this.index + count;
    return i < 0 ? this.s[this.s.length + i] : this.s[i];
  }
  private skipWhitespaces(): void {
    while (isSpace(this.s[this.index])) this.index++;
  }
  private scrollWhitespaces(idx = 0): number {
    while (isSpace(this.at(idx))) idx++;
    return idx;
  }
  /** Offset of the next unescaped `targets` character from `index + idx` (or the distance to the end). */
  private skipToCharacter(targets: string | string[], idx = 0): number {
    const set = new Set(Array.isArray(targets) ? targets : [targets]);
    let i = this.index + idx;
    let backslashes = 0;
    while (i < this.s.length) {
      const ch = this.s[i];
      if (ch === '\\') {
        backslashes++;
        i++;
        continue;
      }
      if (set.has(ch) && backslashes % 2 === 0) return i - this.index;
      backslashes = 0;
      i++;
    }
    return this.s.length - this.index;
  }

  parse(): unknown {
    let json = this.parseJson();
    if (this.index < this.s.length) {
      const found: unknown[] = [json];
      while (this.index < this.s.length) {
        this.resetContext();
        const j = this.parseJson();
        if (pyTruthy(j)) {
          // A later element with the same shape "seems an update" and replaces the earlier one.
          if (isSameObject(found[found.length - 1], j)) found.pop();
          else if (!pyTruthy(found[found.length - 1])) found.pop();
          found.push(j);
        } else this.index++;
      }
      json = found.length === 1 ? found[0] : found;
    }
    return json;
  }

  private parseJson(): unknown {
    for (;;) {
      const c = this.at();
      if (c === undefined) return '';
      if (c === '{') {
        this.index++;
        return this.parseObject();
      }
      if (c === '[') {
        this.index++;
        return this.parseArray();
      }
      if (!this.emptyContext && (STRING_DELIMITERS.includes(c) || isAlpha(c))) return this.parseString();
      if (!this.emptyContext && (isDigit(c) || c === '-' || c === '.')) return this.parseNumber();
      if (c === '#' || c === '/') return this.parseComment();
      this.index++;
    }
  }

  private parseObject(): unknown {
    const obj: Record<string, unknown> = {};
    const startIndex = this.index;
    while ((this.at() ?? '}') !== '}') {
      this.skipWhitespaces();
      if (this.at() === ':') this.index++;
      this.setContext('OBJECT_KEY');
      let rollbackIndex = this.index;
      let key = '';
      while (this.at()) {
        rollbackIndex = this.index;
        if (this.at() === '[' && key === '') {
          // `"a": [1], [2]`: a stray array after an array value is merged into it.
          const keys = Object.keys(obj);
          const prevKey = keys.length ? keys[keys.length - 1] : null;
          if (prevKey && Array.isArray(obj[prevKey])) {
            this.index++;
            const newArray = this.parseArray();
            if (Array.isArray(newArray)) {
              const prev = obj[prevKey] as unknown[];
              prev.push(...(newArray.length === 1 && Array.isArray(newArray[0]) ? newArray[0] : newArray));
            }
            this.skipWhitespaces();
            if (this.at() === ',') this.index++;
            this.skipWhitespaces();
            continue;
          }
        }
        key = pyValueStr(this.parseString());
        if (key === '') this.skipWhitespaces();
        if (key !== '' || [':', '}'].includes(this.at() as string)) break;
      }
      if (this.stack.includes('ARRAY') && key in obj) {
        // A repeated key inside an array starts a new object: insert the missing `{`.
        this.index = rollbackIndex - 1;
        this.s.splice(this.index + 1, 0, '{');
        break;
      }
      this.skipWhitespaces();
      if ((this.at() ?? '}') === '}') continue;
      this.skipWhitespaces();
      this.index++; // the ':' (or whatever stands in for it)
      this.resetContext();
      this.setContext('OBJECT_VALUE');
      this.skipWhitespaces();
      let value: unknown = '';
      if (![',', '}'].includes(this.at() as string)) value = this.parseJson();
      this.resetContext();
      setOwn(obj, key, value);
      if ([',', "'", '"'].includes(this.at() as string)) this.index++;
      if (this.at() === ']' && this.stack.includes('ARRAY')) {
        this.index--;
        break;
      }
      this.skipWhitespaces();
    }
    this.index++;

    if (Object.keys(obj).length === 0 && this.index - startIndex > 2) {
      // `{"a", "b"}`: not an object after all.
      this.index = startIndex;
      return this.parseArray();
    }
    if (!this.emptyContext) {
      if (this.at() === '}' && this.current !== 'OBJECT_KEY' && this.current !== 'OBJECT_VALUE') this.index++;
      return obj;
    }
    // `{"a": 1}, "b": 2}`: members after a premature closing brace.
    this.skipWhitespaces();
    if (this.at() !== ',') return obj;
    this.index++;
    this.skipWhitespaces();
    if (!STRING_DELIMITERS.includes(this.at() as string)) return obj;
    const more = this.parseObject();
    if (isPlainDict(more)) for (const [k, v] of Object.entries(more)) setOwn(obj, k, v);
    return obj;
  }

  private parseArray(): unknown[] {
    const arr: unknown[] = [];
    this.setContext('ARRAY');
    let c = this.at();
    while (c && c !== ']' && c !== '}') {
      this.skipWhitespaces();
      let value: unknown;
      if (STRING_DELIMITERS.includes(c)) {
        // `["a": 1]`: a string followed by ':' is the first key of an object missing its `{`.
        let i = this.skipToCharacter(c, 1);
        i = this.scrollWhitespaces(i + 1);
        value = this.at(i) === ':' ? this.parseObject() : this.parseString();
      } else value = this.parseJson();
      if (value === '') this.index++;
      else if (!(value === '...' && this.at(-1) === '.')) arr.push(value);
      c = this.at();
      while (c && c !== ']' && (isSpace(c) || c === ',')) {
        this.index++;
        c = this.at();
      }
    }
    this.index++;
    this.resetContext();
    return arr;
  }

  private parseNumber(): unknown {
    let text = '';
    let c = this.at();
    const inArray = this.current === 'ARRAY';
    while (c && NUMBER_CHARS.has(c) && (!inArray || c !== ',')) {
      text += c;
      this.index++;
      c = this.at();
    }
    if (text && '-eE/,'.includes(text[text.length - 1])) {
      text = text.slice(0, -1);
      this.index--;
    } else if (isAlpha(this.at())) {
      // `123abc` was a string all along.
      this.index -= text.length;
      return this.parseString();
    }
    if (text.includes(',')) return text;
    if (/[.eE]/.test(text)) {
      return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) ? floatValue(Number(text)) : text;
    }
    return /^[+-]?\d+$/.test(text) ? intFromDigits(text) : text;
  }

  private parseComment(): unknown {
    for (;;) {
      let c = this.at();
      const terminators = ['\n', '\r'];
      if (this.stack.includes('ARRAY')) terminators.push(']');
      if (this.stack.includes('OBJECT_VALUE')) terminators.push('}');
      if (this.stack.includes('OBJECT_KEY')) terminators.push(':');
      if (c === '#') {
        while (c && !terminators.includes(c)) {
          this.index++;
          c = this.at();
        }
      } else if (c === '/') {
        const next = this.at(1);
        if (next === '/') {
          this.index += 2;
          c = this.at();
          while (c && !terminators.includes(c)) {
            this.index++;
            c = this.at();
          }
        } else if (next === '*') {
          this.index += 2;
          for (;;) {
            const d = this.at();
            if (!d) break;
            this.index++;
            if (d === '/' && this.at(-2) === '*') break;
          }
        } else this.index++;
      }
      if (this.emptyContext) {
        this.skipWhitespaces();
        if (this.at() === '#' || this.at() === '/') continue;
        return this.parseJson();
      }
      return '';
    }
  }

  /** `true`/`false`/`null` in any letter case, or `""` with the index restored. */
  private parseBooleanOrNull(): unknown {
    const words: Record<string, [string, boolean | null]> = {
      t: ['true', true],
      f: ['false', false],
      n: ['null', null],
    };
    const [word, value] = words[(this.at() ?? '').toLowerCase()];
    const start = this.index;
    let i = 0;
    while (i < word.length && (this.at() ?? '').toLowerCase() === word[i]) {
      i++;
      this.index++;
    }
    if (i === word.length) return value;
    this.index = start;
    return '';
  }

  private parseString(): unknown {
    const st = {
      missingQuotes: false,
      doubledQuotes: false,
      l: '"',
      r: '"',
      acc: '',
      unmatched: false,
      pendingInline: false,
      inline: [] as string[],
    };
    let c = this.at();
    if (c === '#' || c === '/') return this.parseComment();
    while (c && !STRING_DELIMITERS.includes(c) && !isAlnum(c)) {
      this.index++;
      c = this.at();
    }
    if (!c) return '';

    const simple = this.trySimpleQuotedString();
    if (simple !== null) return simple;

    if (c === "'") st.l = st.r = "'";
    else if (c === '\u201c') {
      st.l = '\u201c';
      st.r = '\u201d';
    } else if (isAlnum(c)) {
      if ('tfn'.includes(c.toLowerCase()) && this.current !== 'OBJECT_KEY') {
        const v = this.parseBooleanOrNull();
        if (v !== '') return v;
      }
      st.missingQuotes = true;
    }
    if (!st.missingQuotes) this.index++;

    if (this.at() === '`' && this.s.slice(this.index, this.index + 7).join('') === '```json') {
      // An LLM code block inside a string: parse its JSON.
      const i = this.skipToCharacter('`', 7);
      if (this.s.slice(this.index + i, this.index + i + 3).join('') === '```') {
        this.index += 7;
        return this.parseJson();
      }
    }

    if (this.at() === st.l) {
      const next = this.at(1);
      if (
        (this.current === 'OBJECT_KEY' && next === ':') ||
        (this.current === 'OBJECT_VALUE' && (next === ',' || next === '}')) ||
        (this.current === 'ARRAY' && (next === ',' || next === ']'))
      ) {
        this.index++;
        return '';
      }
      if (next === st.l) return '';
      const i = this.skipToCharacter(st.r, 1);
      if (this.at(i + 1) === st.r) {
        st.doubledQuotes = true;
        this.index++;
      } else {
        const j = this.scrollWhitespaces(1);
        const nc = this.at(j);
        if (nc !== undefined && [...STRING_DELIMITERS, '{', '['].includes(nc)) {
          this.index++;
          return '';
        }
        if (nc === undefined || ![',', ']', '}'].includes(nc)) this.index++;
      }
    }

    c = this.scanStringBody(st);

    if (c && st.missingQuotes && this.current === 'OBJECT_KEY' && isSpace(c)) {
      // An unquoted "key" that is really a comment.
      this.skipWhitespaces();
      if (this.at() !== ':' && this.at() !== ',') return '';
    }
    if (c !== st.r) st.acc = rstripPy(st.acc);
    else this.index++;
    if (st.missingQuotes || st.acc.endsWith('\n')) st.acc = rstripPy(st.acc);
    return st.acc;
  }

  /** Fast path: `"text"` without escapes or newlines, followed by what the context expects. */
  private trySimpleQuotedString(): string | null {
    if (this.at() !== '"') return null;
    let end = this.index + 1;
    while (end < this.s.length && this.s[end] !== '"') {
      if (['\\', '\n', '\r'].includes(this.s[end])) return null;
      end++;
    }
    if (end >= this.s.length) return null;
    let next = end + 1;
    while (next < this.s.length && isSpace(this.s[next])) next++;
    const nc = this.s[next];
    const ok =
      this.current === 'OBJECT_KEY'
        ? nc === ':'
        : this.current === 'OBJECT_VALUE'
          ? nc === undefined || nc === ',' || nc === '}'
          : this.current === 'ARRAY'
            ? nc === undefined || nc === ',' || nc === ']'
            : nc === undefined;
    if (!ok) return null;
    const value = this.s.slice(this.index + 1, end).join('');
    this.index = end + 1;
    return value;
  }

  private appendLiteral(st: { acc: string }, c: string): string | undefined {
    st.acc += c;
    this.index++;
    return this.at();
  }

  private scanStringBody(st: {
    missingQuotes: boolean;
    doubledQuotes: boolean;
    l: string;
    r: string;
    acc: string;
    unmatched: boolean;
    pendingInline: boolean;
    inline: string[];
  }): string | undefined {
    let c = this.at();
    while (c && c !== st.r) {
      if (st.missingQuotes) {
        if (this.current === 'OBJECT_KEY' && (c === ':' || isSpace(c))) break;
        if (this.current === 'ARRAY' && (c === ']' || c === ',')) break;
      }
      if (st.pendingInline && c in INLINE_CLOSERS) {
        const end = this.skipInlineContainer(0);
        if (end !== null) {
          st.pendingInline = false;
          st.inline.length = 0;
          st.acc += this.s.slice(this.index, this.index + end).join('');
          this.index += end;
          c = this.at();
          continue;
        }
      }
      if (this.current === 'OBJECT_VALUE' && c === ',' && !st.pendingInline && st.inline.length === 0) {
        const kind = this.classifyObjectValueComma();
        if (kind === 'member') break;
        st.pendingInline = kind === 'container';
        c = this.appendLiteral(st, c);
        continue;
      }
      const keep = this.updateInlineStack(c, st);
      if (keep) {
        c = this.appendLiteral(st, c);
        continue;
      }
      if (this.current === 'OBJECT_VALUE' && c === '}' && (!st.acc || st.acc[st.acc.length - 1] !== st.r)) {
        if (this.closingBraceEndsString(st)) break;
      }
      if (c === ']' && this.stack.includes('ARRAY') && (!st.acc || st.acc[st.acc.length - 1] !== st.r)) {
        const i = this.skipToCharacter(st.r);
        if (!this.at(i)) break;
      }
      if (this.current === 'OBJECT_VALUE' && c === '}') {
        const i = this.scrollWhitespaces(1);
        if (!this.at(i)) break;
        if (this.at(i) === '`' && this.at(i + 1) === '`' && this.at(i + 2) === '`') break;
      }
      st.acc += c;
      this.index++;
      c = this.at();
      if (c === undefined) break;
      if (st.acc.endsWith('\\')) {
        const [handled, next] = this.normalizeEscape(st, c);
        c = next;
        if (handled) continue;
      }
      if (c === ':' && !st.missingQuotes && this.current === 'OBJECT_KEY') {
        let i = this.skipToCharacter(st.l, 1);
        if (this.at(i)) {
          i = this.skipToCharacter(st.r, i + 1);
          if (this.at(i)) {
            i = this.scrollWhitespaces(i + 1);
            if ([',', '}'].includes(this.at(i) as string)) break;
          }
        } else break;
      }
      if (c === st.r && st.acc && !st.acc.endsWith('\\')) {
        const [handled, next, stop] = this.rightDelimiterCandidate(st, c);
        c = next;
        if (stop) break;
        if (handled) continue;
      }
    }
    return c;
  }

  /** Whether an unquoted-looking `}` inside an object value string closes the object. */
  private closingBraceEndsString(st: { l: string; r: string; acc: string }): boolean {
    let missing = true;
    this.skipWhitespaces();
    if (this.at(1) === '\\') missing = false;
    let i = this.skipToCharacter(st.r, 1);
    if (this.at(i)) {
      i = this.scrollWhitespaces(i + 1);
      const nc = this.at(i);
      if (!nc || nc === ',' || nc === '}') missing = false;
      else {
        i = this.skipToCharacter(st.l, i);
        if (!this.at(i)) missing = false;
        else {
          i = this.scrollWhitespaces(i + 1);
          const n2 = this.at(i);
          if (n2 && n2 !== ':') missing = false;
        }
      }
    } else {
      i = this.skipToCharacter(':', 1);
      if (this.at(i)) return true;
      i = this.scrollWhitespaces(1);
      const j = this.skipToCharacter('}', i);
      if (j - i > 1) missing = false;
      else if (this.at(j) && st.acc.includes('{')) missing = false;
    }
    return missing;
  }

  private normalizeEscape(st: { r: string; acc: string }, c: string): [boolean, string | undefined] {
    const escapes: Record<string, string> = { t: '\t', n: '\n', r: '\r', b: '\b' };
    if (c === st.r || c in escapes || c === '\\') {
      st.acc = st.acc.slice(0, -1) + (escapes[c] ?? c);
      this.index++;
      let next = this.at();
      while (next && st.acc.endsWith('\\') && (next === st.r || next === '\\')) {
        st.acc = st.acc.slice(0, -1) + next;
        this.index++;
        next = this.at();
      }
      return [true, next];
    }
    if (c === 'u' || c === 'x') {
      const n = c === 'u' ? 4 : 2;
      const hex = this.s.slice(this.index + 1, this.index + 1 + n).join('');
      if (hex.length === n && /^[0-9a-fA-F]+$/.test(hex)) {
        st.acc = st.acc.slice(0, -1) + String.fromCodePoint(parseInt(hex, 16));
        this.index += 1 + n;
        return [true, this.at()];
      }
    } else if (STRING_DELIMITERS.includes(c) && c !== st.r) {
      st.acc = st.acc.slice(0, -1) + c;
      this.index++;
      return [true, this.at()];
    }
    return [false, c];
  }

  /** A quote that could close the string: decide whether it does (`[handled, char, stop]`). */
  private rightDelimiterCandidate(
    st: {
      missingQuotes: boolean;
      doubledQuotes: boolean;
      l: string;
      r: string;
      acc: string;
      unmatched: boolean;
    },
    c: string,
  ): [boolean, string | undefined, boolean] {
    if (st.doubledQuotes && this.at(1) === st.r) {
      this.index++;
      return [true, c, false];
    }
    if (st.missingQuotes && this.current === 'OBJECT_VALUE') {
      let i = 1;
      let nc = this.at(i);
      while (nc && nc !== st.r && nc !== st.l) nc = this.at(++i);
      if (nc) {
        i = this.scrollWhitespaces(i + 1);
        if (this.at(i) === ':') {
          this.index--;
          return [false, this.at(), true];
        }
      }
      return [false, c, false];
    }
    if (st.unmatched) {
      st.unmatched = false;
      return [true, this.appendLiteral(st, c), false];
    }
    let i = 1;
    let nc = this.at(i);
    let checkComma = true;
    while (nc && nc !== st.r && nc !== st.l) {
      if (checkComma && isAlpha(nc)) checkComma = false;
      if (
        (this.stack.includes('OBJECT_KEY') && (nc === ':' || nc === '}')) ||
        (this.stack.includes('OBJECT_VALUE') && nc === '}') ||
        (this.stack.includes('ARRAY') && (nc === ']' || nc === ',')) ||
        (checkComma && this.current === 'OBJECT_VALUE' && nc === ',')
      )
        break;
      nc = this.at(++i);
    }
    if (nc === ',' && this.current === 'OBJECT_VALUE') {
      i = this.skipToCharacter(st.r, i + 1);
      i = this.scrollWhitespaces(i + 1);
      nc = this.at(i);
      if (nc === '}' || nc === ',') return [true, this.appendLiteral(st, c), false];
    } else if (nc === st.r && this.at(i - 1) !== '\\') {
      if (this.onlyWhitespaceUntil(i) && !(this.current === 'OBJECT_VALUE' && this.quotedMemberFollows(i))) {
        return [false, c, true];
      }
      if (this.current === 'OBJECT_VALUE') {
        if (this.quotedMemberFollows(i)) return [true, this.appendLiteral(st, c), false];
        i = this.skipToCharacter(st.r, i + 1) + 1;
        nc = this.at(i);
        while (nc && nc !== ':') {
          if ([',', ']', '}'].includes(nc) || (nc === st.r && this.at(i - 1) !== '\\')) break;
          nc = this.at(++i);
        }
        if (nc !== ':') {
          st.unmatched = !st.unmatched;
          return [true, this.appendLiteral(st, c), false];
        }
      } else if (this.current === 'ARRAY') {
        let even = nc === st.r;
        while (nc === st.r) {
          i = this.skipToCharacter([st.r, ']'], i + 1);
          nc = this.at(i);
          if (nc !== st.r) {
            even = false;
            break;
          }
          i = this.skipToCharacter([st.r, ']'], i + 1);
          nc = this.at(i);
        }
        if (even) {
          st.unmatched = !st.unmatched;
          return [true, this.appendLiteral(st, c), false];
        }
        return [false, c, true];
      } else if (this.current === 'OBJECT_KEY') {
        return [true, this.appendLiteral(st, c), false];
      }
    }
    return [false, c, false];
  }

  private onlyWhitespaceUntil(end: number): boolean {
    for (let j = 1; j < end; j++) {
      const c = this.at(j);
      if (c !== undefined && !isSpace(c)) return false;
    }
    return true;
  }

  private quotedMemberFollows(quoteIdx: number): boolean {
    const comma = this.scrollWhitespaces(quoteIdx + 1);
    if (this.at(comma) !== ',') return false;
    return this.memberStartsAt(this.scrollWhitespaces(comma + 1));
  }

  private memberStartsAt(idx: number): boolean {
    const c = this.at(idx);
    if (c === undefined || c === '}') return false;
    if (STRING_DELIMITERS.includes(c)) {
      const close = c === '\u201c' ? '\u201d' : c;
      const end = this.skipToCharacter(close, idx + 1);
      if (this.at(end) !== close) return false;
      return this.at(this.scrollWhitespaces(end + 1)) === ':';
    }
    if (isAlnum(c) || c === '_') return this.bareKeyFollowedByColon(idx);
    return false;
  }

  private bareKeyFollowedByColon(idx: number): boolean {
    let c = this.at(idx);
    if (!c || !(isAlnum(c) || c === '_')) return false;
    while (c && (isAlnum(c) || c === '_' || c === '-')) c = this.at(++idx);
    return this.at(this.scrollWhitespaces(idx)) === ':';
  }

  /** Is the `,` inside an object value the start of the next member, part of the text, or before a container? */
  private classifyObjectValueComma(): 'container' | 'member' | 'string' {
    const nextIdx = this.scrollWhitespaces(1);
    const nc = this.at(nextIdx);
    if (nc === undefined || nc === '}') return 'member';
    if (STRING_DELIMITERS.includes(nc)) {
      let end = this.skipToCharacter(nc, nextIdx + 1);
      if (!this.at(end)) return 'string';
      end = this.scrollWhitespaces(end + 1);
      return this.at(end) === ':' ? 'member' : 'string';
    }
    if (nc === '`' || isAlnum(nc) || nc === '_') {
      let k = nc === '`' ? nextIdx + 1 : nextIdx;
      let kc = this.at(k);
      while (kc && (isAlnum(kc) || kc === '_' || kc === '-')) kc = this.at(++k);
      k = this.scrollWhitespaces(k);
      if (this.at(k) === ':') return 'member';
      if (nc === '`') return 'string';
    }
    const quoteIdx = this.skipToCharacter(STRING_DELIMITERS, nextIdx);
    const quote = this.at(quoteIdx);
    if (!quote) return 'string';
    const containerIdx = this.skipToCharacter(['{', '['], nextIdx);
    const cc = this.at(containerIdx);
    if ((cc === '{' || cc === '[') && containerIdx < quoteIdx) return 'container';
    let end = this.skipToCharacter(quote, quoteIdx + 1);
    if (!this.at(end)) return 'string';
    end = this.scrollWhitespaces(end + 1);
    return this.at(end) === ':' ? 'member' : 'string';
  }

  /** Track `[`/`{` opened inside a string value so their closers stay in the string. */
  private updateInlineStack(c: string, st: { pendingInline: boolean; inline: string[] }): boolean {
    if (c === '{' || c === '[') {
      if (st.pendingInline) {
        st.inline.push(c);
        st.pendingInline = false;
        return false;
      }
      if (st.inline.length) st.inline.push(c);
    }
    const top = st.inline[st.inline.length - 1];
    if (top && ((c === '}' && top === '{') || (c === ']' && top === '['))) {
      st.inline.pop();
      return true;
    }
    return false;
  }

  /** End offset of a balanced `[…]`/`{…}`/`(…)` starting at `index + idx`, or null. */
  private skipInlineContainer(idx: number): number | null {
    const open = this.at(idx);
    if (open === undefined || !(open in INLINE_CLOSERS)) return idx;
    const stack = [INLINE_CLOSERS[open]];
    let i = idx + 1;
    while (stack.length) {
      const c = this.at(i);
      if (!c) return null;
      if (STRING_DELIMITERS.includes(c)) {
        const close = c === '\u201c' ? '\u201d' : c;
        i = this.skipToCharacter(close, i + 1);
        if (this.at(i) !== close) return null;
      } else if (c in INLINE_CLOSERS) stack.push(INLINE_CLOSERS[c]);
      else if (c === stack[stack.length - 1]) {
        stack.pop();
        if (!stack.length) return i + 1;
      }
      i++;
    }
    return null;
  }
}

/** json_repair's ObjectComparer.is_same_object: same types and same keys/structure, recursively. */
function isSameObject(a: unknown, b: unknown): boolean {
  if (pyKind(a) !== pyKind(b)) return false;
  if (isPyDict(a)) {
    const x = dictEntries(a);
    const y = new Map(dictEntries(b) as [string, unknown][]);
    return (
      x.length === y.size && x.every(([k, v]) => y.has(k as string) && isSameObject(v, y.get(k as string)))
    );
  }
  if (Array.isArray(a)) {
    const y = b as unknown[];
    return a.length === y.length && a.every((v, i) => isSameObject(v, y[i]));
  }
  return true;
}

const rstripPy = (s: string): string =>
  s.replace(/[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/, '');

/**
 * `json_repair.loads(text)`: `json.loads` first; otherwise the repairing parser. Text without any `{`/`[`
 * (e.g. `three`, `Paris`, `- a\n- b`) gives `""`, which DSPy treats as "not JSON".
 */
export function jsonRepairLoads(text: string): unknown {
  try {
    return jsonLoads(text);
  } catch (error) {
    if (!(error instanceof JSONDecodeError)) throw error;
  }
  return new RepairParser(text).parse();
}

// ---------------------------------------------------------------------------------------------------------------
// ast.literal_eval

/** The exception `ast.literal_eval` raises; `pyType` is Python's class (ValueError / SyntaxError / TypeError). */
export class LiteralEvalError extends Error {
  constructor(
    readonly pyType: 'ValueError' | 'SyntaxError' | 'TypeError',
    message: string,
  ) {
    super(message);
    this.name = pyType;
  }
}

type Tok =
  | { t: 'num'; v: number | bigint | PyFloat }
  | { t: 'str'; v: string }
  | { t: 'name'; v: string }
  | { t: 'op'; v: string }
  | { t: 'end' };

const syntax = (msg: string) => new LiteralEvalError('SyntaxError', msg);
const malformed = () => new LiteralEvalError('ValueError', 'malformed node or string');

function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  let depth = 0;
  const digitPart = '\\d(?:_?\\d)*';
  const numberRe = new RegExp(
    '^(?:' +
      '0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+' +
      `|(?:${digitPart})?\\.${digitPart}(?:[eE][-+]?${digitPart})?` +
      `|${digitPart}\\.(?:${digitPart})?(?:[eE][-+]?${digitPart})?` +
      `|${digitPart}[eE][-+]?${digitPart}` +
      `|${digitPart}` +
      ')',
  );
  while (i < src.length) {
    const c = src[i];
    if (c === ' ' || c === '\t' || c === '\f') {
      i++;
    } else if (c === '#') {
      while (i < src.length && src[i] !== '\n' && src[i] !== '\r') i++;
    } else if (c === '\\' && (src[i + 1] === '\n' || src[i + 1] === '\r')) {
      i += src[i + 1] === '\r' && src[i + 2] === '\n' ? 3 : 2;
    } else if (c === '\n' || c === '\r') {
      if (depth === 0 && toks.length === 0) {
        // Blank lines before the expression are fine, an indented first line is not.
        if (/^[ \t\f]+[^\s#]/.test(src.slice(i + 1))) throw syntax('unexpected indent');
      } else if (depth === 0 && !/^(?:\s|#[^\n\r]*)*$/.test(src.slice(i))) {
        // Outside brackets a newline ends the expression: only blank lines and comments may follow.
        throw syntax('invalid syntax');
      }
      i++;
    } else if (/[([{]/.test(c)) {
      depth++;
      toks.push({ t: 'op', v: c });
      i++;
    } else if (/[)\]}]/.test(c)) {
      depth--;
      toks.push({ t: 'op', v: c });
      i++;
    } else if (/[,:+-]/.test(c)) {
      toks.push({ t: 'op', v: c });
      i++;
    } else if (src.startsWith('...', i)) {
      toks.push({ t: 'name', v: '...' });
      i += 3;
    } else if (/\d/.test(c) || (c === '.' && /\d/.test(src[i + 1] ?? ''))) {
      const m = numberRe.exec(src.slice(i))!;
      const text = m[0];
      i += text.length;
      // `1j` (complex), `1abc`, `0123`: nothing DSPy can use; Python raises too (or builds a complex).
      if (/^[\p{L}\p{N}_]/u.test(src[i] ?? '')) throw malformed();
      const clean = text.replace(/_/g, '');
      if (/^0[xXoObB]/.test(clean)) toks.push({ t: 'num', v: intFromDigits(BigInt(clean).toString()) });
      else if (/[.eE]/.test(clean)) toks.push({ t: 'num', v: floatValue(Number(clean)) });
      else if (/^0+[1-9]/.test(clean))
        throw syntax('leading zeros in decimal integer literals are not permitted');
      else {
        if (clean.length > 4300) throw new LiteralEvalError('ValueError', 'Exceeds the limit (4300 digits)');
        toks.push({ t: 'num', v: intFromDigits(clean) });
      }
    } else if (/[\p{L}_]/u.test(c)) {
      const m = /^[\p{L}\p{Nl}_][\p{L}\p{N}\p{Mn}\p{Mc}\p{Pc}]*/u.exec(src.slice(i))!;
      const word = m[0];
      const quote = src[i + word.length];
      if ((quote === "'" || quote === '"') && /^(?:[rRuUbBfF]|[rR][bBfF]|[bBfF][rR])$/.test(word)) {
        if (/[bBfF]/.test(word)) throw malformed(); // bytes and f-strings: not text DSPy can use
        const [value, next] = readString(src, i + word.length, /[rR]/.test(word));
        toks.push({ t: 'str', v: value });
        i = next;
      } else {
        toks.push({ t: 'name', v: word });
        i += word.length;
      }
    } else if (c === "'" || c === '"') {
      const [value, next] = readString(src, i, false);
      toks.push({ t: 'str', v: value });
      i = next;
    } else {
      throw syntax('invalid syntax');
    }
  }
  toks.push({ t: 'end' });
  return toks;
}

/** A Python string literal at `start` (the opening quote): its value and the index after it. */
function readString(src: string, start: number, raw: boolean): [string, number] {
  const q = src[start];
  const triple = src.startsWith(q.repeat(3), start);
  const close = triple ? q.repeat(3) : q;
  let i = start + close.length;
  let out = '';
  for (;;) {
    if (i >= src.length) throw syntax('unterminated string literal');
    if (src.startsWith(close, i)) return [out, i + close.length];
    const c = src[i];
    if (!triple && (c === '\n' || c === '\r')) throw syntax('unterminated string literal');
    if (c !== '\\') {
      out += c;
      i++;
      continue;
    }
    const e = src[i + 1];
    if (e === undefined) throw syntax('unterminated string literal');
    if (raw) {
      out += c + e;
      i += 2;
      continue;
    }
    const simple: Record<string, string> = {
      '\\': '\\',
      "'": "'",
      '"': '"',
      a: '\x07',
      b: '\b',
      f: '\f',
      n: '\n',
      r: '\r',
      t: '\t',
      v: '\v',
    };
    if (e === '\n') i += 2;
    else if (e === '\r') i += src[i + 2] === '\n' ? 3 : 2;
    else if (e in simple) {
      out += simple[e];
      i += 2;
    } else if (/[0-7]/.test(e)) {
      const m = /^[0-7]{1,3}/.exec(src.slice(i + 1))!;
      out += String.fromCodePoint(parseInt(m[0], 8));
      i += 1 + m[0].length;
    } else if (e === 'x' || e === 'u' || e === 'U') {
      const n = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      const hex = src.slice(i + 2, i + 2 + n);
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex)) throw syntax('truncated escape');
      const code = parseInt(hex, 16);
      if (code > 0x10ffff) throw syntax('illegal Unicode character');
      out += String.fromCodePoint(code);
      i += 2 + n;
    } else if (e === 'N') {
      throw syntax('unsupported \\N escape'); // needs the Unicode name database
    } else {
      out += c + e; // unknown escapes stay as written
      i += 2;
    }
  }
}

function assertHashable(v: unknown): void {
  const kind = pyKind(v);
  if (kind === 'list' || kind === 'dict' || kind === 'set') {
    throw new LiteralEvalError('TypeError', `unhashable type: '${kind}'`);
  }
  if (kind === 'tuple') (v as unknown[]).forEach(assertHashable);
}

class LiteralParser {
  private pos = 0;
  constructor(private readonly toks: Tok[]) {}

  private peek(): Tok {
    return this.toks[this.pos];
  }
  private isOp(v: string): boolean {
    const t = this.peek();
    return t.t === 'op' && t.v === v;
  }
  private expectOp(v: string): void {
    if (!this.isOp(v)) throw syntax('invalid syntax');
    this.pos++;
  }

  parseEval(): unknown {
    const first = this.expr();
    let result: unknown = first;
    if (this.isOp(',')) {
      // `1, 2` at top level is a tuple.
      const items = [first];
      while (this.isOp(',')) {
        this.pos++;
        if (this.peek().t === 'end') break;
        items.push(this.expr());
      }
      result = pyTuple(items);
    }
    if (this.peek().t !== 'end') throw syntax('invalid syntax');
    return result;
  }

  private expr(): unknown {
    const t = this.peek();
    if (t.t === 'op' && (t.v === '+' || t.v === '-')) {
      // literal_eval allows one sign on a number constant (parentheses are not nodes).
      this.pos++;
      if (this.isOp('+') || this.isOp('-')) throw malformed();
      const [value, isNumber] = this.atom();
      if (!isNumber) throw malformed();
      if (this.isOp('+') || this.isOp('-')) throw malformed();
      if (t.v === '+') return value;
      if (value instanceof PyFloat) return new PyFloat(-value.value);
      if (typeof value === 'bigint') return intFromDigits((-value).toString());
      const n = -(value as number);
      return Object.is(n, -0) ? 0 : n;
    }
    const [value] = this.atom();
    if (this.isOp('+') || this.isOp('-')) throw malformed(); // binary ops (only complex sums are literals)
    return value;
  }

  /** An atom and whether it is a bare number constant. */
  private atom(): [unknown, boolean] {
    const t = this.peek();
    this.pos++;
    switch (t.t) {
      case 'num':
        return [t.v, true];
      case 'str': {
        let s = t.v;
        while (this.peek().t === 'str') s += (this.toks[this.pos++] as { v: string }).v;
        return [s, false];
      }
      case 'name':
        if (t.v === 'True') return [true, false];
        if (t.v === 'False') return [false, false];
        if (t.v === 'None') return [null, false];
        if (t.v === '...') return [PY_ELLIPSIS, false];
        if (t.v === 'set' && this.isOp('(') && this.toks[this.pos + 1]?.t === 'op') {
          const close = this.toks[this.pos + 1] as { v: string };
          if (close.v === ')') {
            this.pos += 2;
            return [pySet([]), false];
          }
        }
        throw malformed();
      case 'op':
        if (t.v === '(') return this.paren();
        if (t.v === '[') return [this.sequence(']'), false];
        if (t.v === '{') return [this.braces(), false];
        throw syntax('invalid syntax');
      default:
        throw syntax('unexpected EOF while parsing');
    }
  }

  private paren(): [unknown, boolean] {
    if (this.isOp(')')) {
      this.pos++;
      return [pyTuple([]), false];
    }
    const startTok = this.peek();
    const first = this.expr();
    if (this.isOp(')')) {
      this.pos++;
      return [first, startTok.t === 'num'];
    }
    const items = [first];
    while (this.isOp(',')) {
      this.pos++;
      if (this.isOp(')')) break;
      items.push(this.expr());
    }
    this.expectOp(')');
    return [pyTuple(items), false];
  }

  private sequence(close: string): unknown[] {
    const items: unknown[] = [];
    while (!this.isOp(close)) {
      items.push(this.expr());
      if (this.isOp(',')) this.pos++;
      else if (!this.isOp(close)) throw syntax('invalid syntax');
    }
    this.pos++;
    return items;
  }

  private braces(): unknown {
    if (this.isOp('}')) {
      this.pos++;
      return {};
    }
    const first = this.expr();
    if (!this.isOp(':')) {
      const items = [first];
      while (this.isOp(',')) {
        this.pos++;
        if (this.isOp('}')) break;
        items.push(this.expr());
      }
      this.expectOp('}');
      const unique: unknown[] = [];
      for (const item of items) {
        assertHashable(item);
        if (!unique.some((u) => pyEquals(u, item))) unique.push(item);
      }
      return pySet(unique);
    }
    const entries: [unknown, unknown][] = [];
    let key = first;
    for (;;) {
      this.expectOp(':');
      const value = this.expr();
      assertHashable(key);
      const existing = entries.find(([k]) => pyEquals(k, key));
      if (existing) existing[1] = value;
      else entries.push([key, value]);
      if (!this.isOp(',')) break;
      this.pos++;
      if (this.isOp('}')) break;
      key = this.expr();
    }
    this.expectOp('}');
    if (entries.every(([k]) => typeof k === 'string')) {
      const obj: Record<string, unknown> = {};
      for (const [k, v] of entries) setOwn(obj, k as string, v);
      return obj;
    }
    return new PyDict(entries);
  }
}

/** Python `ast.literal_eval(text)` for the literals an LM writes. Throws `LiteralEvalError`. */
export function literalEval(text: string): unknown {
  if (text.includes('\0')) throw syntax('source code string cannot contain null bytes');
  return new LiteralParser(tokenize(text.replace(/^[ \t]+/, ''))).parseEval();
}

/**
 * DSPy `parse_value`'s reading of a text: `json_repair.loads`; when that finds nothing (`""`) in non-empty
 * text, `ast.literal_eval`, and when that raises ValueError/SyntaxError, the raw text.
 * A TypeError from literal_eval (`{[1]: 2}`: unhashable key) propagates, as in Python.
 */
export function readLmValue(text: string): unknown {
  const candidate = jsonRepairLoads(text);
  if (candidate !== '' || text === '') return candidate;
  try {
    return literalEval(text);
  } catch (error) {
    if (error instanceof LiteralEvalError && error.pyType !== 'TypeError') return text;
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// JSONAdapter step 2

/**
 * The first balanced `{…}` in `text`, as DSPy's `regex.search(r"\{(?:[^{}]|(?R))*\}", text, regex.DOTALL)`:
 * the leftmost `{` whose braces balance (quotes are not special). Null when there is none.
 */
export function findFirstJsonObject(text: string): string | null {
  // One pass pairing braces with a stack: the earliest `{` that gets paired is where the regex matches.
  const open: number[] = [];
  let best: [number, number] | null = null;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '{') open.push(i);
    else if (text[i] === '}' && open.length) {
      const start = open.pop()!;
      if (!best || start < best[0]) best = [start, i];
    }
  }
  return best ? text.slice(best[0], best[1] + 1) : null;
}
