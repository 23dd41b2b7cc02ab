/**
 * Python string and value semantics the prompts depend on byte for byte: `str.strip()`, `textwrap.dedent`,
 * `inspect.cleandoc`, `str(value)`, float `repr`, and `json.dumps(..., ensure_ascii=False)`.
 */

/** Python `str.isspace()` characters (JS `\s` differs: it has U+FEFF and lacks U+001C–U+001F, U+0085). */
const PY_WS =
  '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const LEADING_WS = new RegExp(`^[${PY_WS}]+`);
const TRAILING_WS = new RegExp(`[${PY_WS}]+$`);

export const pyStrip = (s: string): string => pyRstrip(pyLstrip(s));
export const pyLstrip = (s: string): string => s.replace(LEADING_WS, '');
export const pyRstrip = (s: string): string => s.replace(TRAILING_WS, '');

/** Python `str.splitlines()` (no keepends). */
export function pySplitlines(s: string): string[] {
  const lines = s.split(/\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** `textwrap.dedent`: remove the longest common leading whitespace of non-blank lines. */
export function dedent(text: string): string {
  const lines = text.split('\n');
  // Lines of only blanks are normalised to "" (textwrap does this with a regex over [ \t]).
  const normalised = lines.map((l) => (/^[ \t]+$/.test(l) ? '' : l));
  let margin: string | null = null;
  for (const line of normalised) {
    if (line === '') continue;
    const indent = /^[ \t]*/.exec(line)![0];
    if (margin === null) margin = indent;
    else if (indent.startsWith(margin)) continue;
    else if (margin.startsWith(indent)) margin = indent;
    else {
      let i = 0;
      while (i < margin.length && i < indent.length && margin[i] === indent[i]) i++;
      margin = margin.slice(0, i);
    }
  }
  if (!margin) return normalised.join('\n');
  const m = margin;
  return normalised.map((l) => (l.startsWith(m) ? l.slice(m.length) : l)).join('\n');
}

/** `inspect.cleandoc`: expand tabs, strip the common indent of lines after the first, drop blank edges. */
export function cleandoc(doc: string): string {
  const lines = doc.replace(/\t/g, '        ').split('\n');
  let margin = Infinity;
  for (const line of lines.slice(1)) {
    const content = line.replace(/^ +/, '');
    if (content) margin = Math.min(margin, line.length - content.length);
  }
  const out = [lines[0].replace(/^ +/, '')];
  for (const line of lines.slice(1)) out.push(margin < Infinity ? line.slice(margin) : line);
  while (out.length && !out[0]) out.shift();
  while (out.length && !out[out.length - 1]) out.pop();
  return out.join('\n');
}

/**
 * A number that Python holds as a float. JavaScript cannot tell `1.0` from `1`, but Python's `str()`,
 * `json.dumps` and orjson (the cache key) print `1.0`; wrap a value to keep that distinction.
 */
export class PyFloat {
  constructor(readonly value: number) {}
  valueOf(): number {
    return this.value;
  }
  toJSON(): number {
    return this.value;
  }
}

/** Python `repr(float)`: shortest round-trip digits, exponent form outside 1e-4 <= |x| < 1e16. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, expText] = x.toExponential().split('e');
  const exp = Number(expText);
  if (exp < -4 || exp >= 16) {
    const sign = exp < 0 ? '-' : '+';
    const digits = String(Math.abs(exp)).padStart(2, '0');
    return `${mantissa}e${sign}${digits}`;
  }
  const fixed = x.toFixed(Math.max(0, -exp + (mantissa.replace(/^-/, '').replace('.', '').length - 1)));
  return fixed.includes('.') ? fixed : `${fixed}.0`;
}

/** Python `str(value)` for JSON-like values (True/False/None, float repr, dict/list repr). */
export function pyStr(value: unknown): string {
  if (typeof value === 'string') return value;
  return pyRepr(value);
}

/** Python `repr` for JSON-like values. */
export function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (value instanceof PyFloat) return pyFloatRepr(value.value);
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : pyFloatRepr(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') return pyStrLiteral(value);
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).map(
      ([k, v]) => `${pyStrLiteral(k)}: ${pyRepr(v)}`,
    );
    return `{${entries.join(', ')}}`;
  }
  return String(value);
}

/** Python's repr of a str: single quotes unless the text has a single quote and no double quote. */
export function pyStrLiteral(s: string): string {
  const useDouble = s.includes("'") && !s.includes('"');
  const q = useDouble ? '"' : "'";
  let out = '';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === q) out += `\\${q}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return q + out + q;
}

function jsonString(s: string): string {
  // JSON.stringify matches Python's json.dumps(ensure_ascii=False) escaping for well-formed strings.
  return JSON.stringify(s);
}

function jsonNumber(value: number | PyFloat | bigint): string {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof PyFloat) {
    const v = value.value;
    return Number.isFinite(v) ? pyFloatRepr(v) : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
  }
  if (!Number.isFinite(value)) return Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
  return Number.isInteger(value) ? String(value) : pyFloatRepr(value);
}

/** Python `json.dumps(value, ensure_ascii=False[, indent])`. */
export function pyJsonDumps(value: unknown, indent?: number): string {
  return dumpsInner(value, indent, 0);
}

function dumpsInner(value: unknown, indent: number | undefined, depth: number): string {
  if (value === null || value === undefined) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'number' || typeof value === 'bigint' || value instanceof PyFloat)
    return jsonNumber(value);
  if (typeof value === 'string') return jsonString(value);
  const nl = indent === undefined ? '' : '\n' + ' '.repeat(indent * (depth + 1));
  const close = indent === undefined ? '' : '\n' + ' '.repeat(indent * depth);
  const sep = indent === undefined ? ', ' : ',';
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[${nl}${value.map((v) => dumpsInner(v, indent, depth + 1)).join(sep + nl)}${close}]`;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    const body = entries
      .map(([k, v]) => `${jsonString(k)}: ${dumpsInner(v, indent, depth + 1)}`)
      .join(sep + nl);
    return `{${nl}${body}${close}}`;
  }
  return jsonString(String(value));
}
