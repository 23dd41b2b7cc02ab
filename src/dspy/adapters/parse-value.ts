/**
 * DSPy `dspy.adapters.utils.parse_value` and the pydantic v2 validation behind it
 * (`TypeAdapter(annotation).validate_python(value)`, lax mode), with pydantic's error text.
 */
import { FieldType, JsonSchema, LiteralValue } from '../signatures/field-type';
import { ValidationError } from '../utils/exceptions';
import { pyStrip } from '../utils/python';
import {
  dictEntries,
  isPlainDict,
  isPyDict,
  pyEquals,
  pyKind,
  pyNumber,
  pyTuple,
  pyTypeName,
  pyValueRepr,
  pyValueStr,
  readLmValue,
  setOwn,
  toPlainJs,
} from '../utils/python-literal';

/** The pydantic minor version the error URLs name (fixtures were produced with pydantic 2.13). */
const PYDANTIC_DOCS_VERSION = '2.13';

/** Python's ValueError: DSPy raises it for a Literal or Enum mismatch (not a pydantic ValidationError). */
export class ValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ValueError';
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Validators: a FieldType or a JSON schema compiled to pydantic-core's validator shapes

type ModelField = { name: string; node: Node; required: boolean; hasDefault: boolean; default?: unknown };
type Node =
  | { k: 'str' | 'int' | 'float' | 'bool' | 'none' | 'any' }
  | { k: 'list'; items: Node }
  | { k: 'dict'; keys: Node; values: Node }
  | { k: 'literal'; values: unknown[] }
  | { k: 'enum'; name: string; values: unknown[] }
  | { k: 'model'; name: string; fields: ModelField[] }
  | { k: 'nullable'; inner: Node }
  | { k: 'union'; choices: Node[] };

function nodeOf(type: FieldType): Node {
  switch (type.kind) {
    case 'str':
    case 'int':
    case 'float':
    case 'bool':
    case 'any':
      return { k: type.kind };
    case 'list':
      return { k: 'list', items: nodeOf(type.items) };
    case 'dict':
      return { k: 'dict', keys: nodeOf(type.keys), values: nodeOf(type.values) };
    case 'literal':
      return { k: 'literal', values: type.values };
    case 'enum':
      return { k: 'enum', name: type.name, values: type.members.map((m) => m.value) };
    case 'object':
      return nodeOfSchema({ title: type.name, ...type.schema }, type.schema, new Map());
    case 'optional':
      return { k: 'nullable', inner: nodeOf(type.inner) };
  }
}

const SIMPLE_SCHEMA_TYPES: Record<string, Node['k']> = {
  string: 'str',
  integer: 'int',
  number: 'float',
  boolean: 'bool',
  null: 'none',
};

/** A pydantic JSON schema back to the validator it came from. `memo` ties recursive `$ref`s. */
function nodeOfSchema(schema: JsonSchema, root: JsonSchema, memo: Map<JsonSchema, Node>): Node {
  const known = memo.get(schema);
  if (known) return known;
  const sub = (s: unknown) => nodeOfSchema((s ?? {}) as JsonSchema, root, memo);

  if (typeof schema.$ref === 'string') {
    const m = /^#\/(\$defs|definitions)\/(.+)$/.exec(schema.$ref);
    const defs = m ? (root[m[1]] as Record<string, JsonSchema> | undefined) : undefined;
    const target = m && defs ? defs[m[2]] : undefined;
    if (!target) throw new Error(`unresolvable $ref ${schema.$ref}`);
    return sub(target);
  }
  const alternatives = (schema.anyOf ?? schema.oneOf) as unknown[] | undefined;
  if (Array.isArray(alternatives)) return unionOf(alternatives.map(sub));
  if (Array.isArray(schema.allOf) && schema.allOf.length === 1) return sub(schema.allOf[0]);
  if (Array.isArray(schema.enum)) {
    return typeof schema.title === 'string'
      ? { k: 'enum', name: schema.title, values: schema.enum }
      : { k: 'literal', values: schema.enum };
  }
  if ('const' in schema) return { k: 'literal', values: [schema.const] };
  if (Array.isArray(schema.type)) return unionOf(schema.type.map((t) => sub({ type: t })));
  const kind = typeof schema.type === 'string' ? SIMPLE_SCHEMA_TYPES[schema.type] : undefined;
  if (kind) return { k: kind } as Node;
  if (schema.type === 'array') return { k: 'list', items: schema.items ? sub(schema.items) : { k: 'any' } };
  if (schema.type === 'object') {
    const properties = schema.properties as Record<string, JsonSchema> | undefined;
    if (!properties) {
      const extra = schema.additionalProperties;
      return {
        k: 'dict',
        keys: { k: 'str' },
        values: extra && typeof extra === 'object' ? sub(extra) : { k: 'any' },
      };
    }
    const model: Node & { k: 'model' } = {
      k: 'model',
      name: typeof schema.title === 'string' ? schema.title : 'Model',
      fields: [],
    };
    memo.set(schema, model);
    const required = new Set((schema.required as string[] | undefined) ?? []);
    for (const [name, prop] of Object.entries(properties)) {
      model.fields.push({
        name,
        node: sub(prop),
        required: required.has(name),
        hasDefault: 'default' in prop,
        default: prop.default,
      });
    }
    return model;
  }
  return { k: 'any' };
}

/** `X | None` is pydantic's `nullable` schema, other unions its smart `union`. */
function unionOf(choices: Node[]): Node {
  const others = choices.filter((c) => c.k !== 'none');
  if (others.length === choices.length) return choices.length === 1 ? choices[0] : { k: 'union', choices };
  if (others.length === 0) return { k: 'none' };
  return { k: 'nullable', inner: others.length === 1 ? others[0] : { k: 'union', choices: others } };
}

/** pydantic-core's validator name, which titles a ValidationError ("1 validation error for list[str]"). */
function nodeName(node: Node): string {
  switch (node.k) {
    case 'list':
      return `list[${nodeName(node.items)}]`;
    case 'dict':
      return `dict[${nodeName(node.keys)},${nodeName(node.values)}]`;
    case 'literal':
      return `literal[${node.values.map(pyValueRepr).join(',')}]`;
    case 'enum':
      // pydantic names a `(str, Enum)` class `str-enum[...]`; string values are taken to mean that base.
      return `${node.values.every((v) => typeof v === 'string') ? 'str-enum' : 'enum'}[${node.name}]`;
    case 'model':
      return node.name;
    case 'nullable':
      return `nullable[${nodeName(node.inner)}]`;
    case 'union':
      return `union[${node.choices.map(nodeName).join(',')}]`;
    default:
      return node.k;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Validation (pydantic-core's Python-input rules)

type Loc = (string | number)[];
interface LineError {
  type: string;
  loc: Loc;
  msg: string;
  input: unknown;
}
type Outcome = { ok: true; value: unknown } | { ok: false; errors: LineError[] };

const MESSAGES: Record<string, string> = {
  string_type: 'Input should be a valid string',
  int_type: 'Input should be a valid integer',
  int_parsing: 'Input should be a valid integer, unable to parse string as an integer',
  int_from_float: 'Input should be a valid integer, got a number with a fractional part',
  int_parsing_size: 'Unable to parse input string as an integer, exceeded maximum size',
  finite_number: 'Input should be a finite number',
  float_type: 'Input should be a valid number',
  float_parsing: 'Input should be a valid number, unable to parse string as a number',
  bool_type: 'Input should be a valid boolean',
  bool_parsing: 'Input should be a valid boolean, unable to interpret input',
  none_required: 'Input should be None',
  list_type: 'Input should be a valid list',
  dict_type: 'Input should be a valid dictionary',
  missing: 'Field required',
};

const ok = (value: unknown): Outcome => ({ ok: true, value });
const fail = (type: string, input: unknown, msg = MESSAGES[type]): Outcome => ({
  ok: false,
  errors: [{ type, loc: [], msg, input }],
});
const within = (loc: string | number, errors: LineError[]): LineError[] =>
  errors.map((e) => ({ ...e, loc: [loc, ...e.loc] }));

/** Rust `str::trim` (Unicode White_Space: unlike JS `trim`, no U+FEFF but U+0085). */
const rustTrim = (s: string): string =>
  s
    .replace(/^[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/, '')
    .replace(/[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/, '');
const JSON_INT = /^-?(?:0|[1-9]\d*)$/;

function stripUnderscores(s: string): string | null {
  if (s.startsWith('_') || s.endsWith('_') || !s.includes('_') || s.includes('__')) return null;
  return s.replace(/_/g, '');
}

/** pydantic-core `clean_int_str`: trim, one sign, leading zeros, `.0+`, underscores; null when nothing changed. */
function cleanIntStr(input: string): string | null {
  const lenBefore = input.length;
  let s = rustTrim(input);
  if (s.startsWith('+')) {
    if (s[1] === '-') return null;
    s = s.slice(1);
  }
  let negative = false;
  if (s.startsWith('-')) {
    if (s[1] === '-' || s[1] === '+') return null;
    negative = true;
    s = s.slice(1);
  }
  const noZeros = stripLeadingZeros(s);
  if (noZeros === null) return null;
  s = noZeros;
  const dot = s.indexOf('.');
  if (dot !== -1 && /^0+$/.test(s.slice(dot + 1))) s = s.slice(0, dot);
  const plain = stripUnderscores(s);
  if (plain !== null) return (negative ? '-' : '') + plain;
  if (lenBefore === s.length) return null;
  return (negative ? '-' : '') + s;
}

function stripLeadingZeros(s: string): string | null {
  if (!s) return null;
  if (/[1-9-]/.test(s[0])) return s;
  if (s[0] !== '0') return null;
  for (let i = 1; i < s.length; i++) {
    const c = s[i];
    if (c === '0' || c === '_') continue;
    if (/[1-9-]/.test(c)) return s.slice(i);
    if (c === '.') return s.slice(i - 1);
    return null;
  }
  return s.slice(-1);
}

function intFromText(text: string): number {
  return Number(BigInt(text));
}

function strAsInt(input: string): Outcome {
  if (JSON_INT.test(input))
    return input.length > 4300 ? fail('int_parsing_size', input) : ok(intFromText(input));
  const cleaned = cleanIntStr(input);
  return cleaned !== null && JSON_INT.test(cleaned) ? ok(intFromText(cleaned)) : fail('int_parsing', input);
}

function floatAsInt(x: number, input: unknown): Outcome {
  if (!Number.isFinite(x)) return fail('finite_number', input);
  if (x % 1 !== 0) return fail('int_from_float', input);
  if (Math.abs(x) >= 2 ** 63) return fail('int_parsing_size', input);
  return ok(x === 0 ? 0 : x);
}

/** Rust `f64::from_str`: decimal or exponent forms, `inf`/`infinity`/`nan` in any case. */
function rustParseFloat(s: string): number | null {
  if (/^[+-]?(inf|infinity)$/i.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  if (/^[+-]?nan$/i.test(s)) return NaN;
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) return Number(s);
  return null;
}

function strAsFloat(input: string): Outcome {
  let x = rustParseFloat(rustTrim(input));
  if (x === null) {
    const stripped = stripUnderscores(input);
    x = stripped === null ? null : rustParseFloat(stripped);
  }
  return x === null ? fail('float_parsing', input) : ok(x);
}

function strAsBool(input: string): Outcome {
  // Rust `eq_ignore_ascii_case`: only ASCII letters fold.
  const lower = input.replace(/[A-Z]/g, (c) => c.toLowerCase());
  if (input === '0' || ['f', 'n', 'no', 'off', 'false'].includes(lower)) return ok(false);
  if (input === '1' || ['t', 'y', 'on', 'yes', 'true'].includes(lower)) return ok(true);
  return fail('bool_parsing', input);
}

function intAsBool(n: number, input: unknown): Outcome {
  return n === 0 ? ok(false) : n === 1 ? ok(true) : fail('bool_parsing', input);
}

/** pydantic's "'a', 'b' or 'c'" list of expected values. */
function expectedRepr(values: unknown[]): string {
  const reprs = values.map(pyValueRepr);
  const last = reprs.pop()!;
  return reprs.length ? `${reprs.join(', ')} or ${last}` : last;
}

function run(node: Node, input: unknown, strict: boolean): Outcome {
  const kind = pyKind(input);
  switch (node.k) {
    case 'any':
      return ok(toPlainJs(input));
    case 'none':
      return input === null || input === undefined ? ok(null) : fail('none_required', input);
    case 'str':
      return kind === 'str' ? ok(input) : fail('string_type', input);
    case 'int':
      if (kind === 'int') return ok(typeof input === 'bigint' ? Number(input) : input);
      if (kind === 'bool' && !strict) return ok(input ? 1 : 0);
      if (strict) return fail('int_type', input);
      if (kind === 'str') return strAsInt(input as string);
      if (kind === 'float') return floatAsInt(pyNumber(input)!, input);
      return fail('int_type', input);
    case 'float':
      if (kind === 'float' || kind === 'int') return ok(pyNumber(input));
      if (strict) return fail('float_type', input);
      if (kind === 'bool') return ok(input ? 1 : 0);
      if (kind === 'str') return strAsFloat(input as string);
      return fail('float_type', input);
    case 'bool':
      if (kind === 'bool') return ok(input);
      if (strict) return fail('bool_type', input);
      if (kind === 'str') return strAsBool(input as string);
      if (kind === 'int') {
        // Beyond i64 the int is not even tried as 0/1.
        return typeof input === 'bigint' && (input >= 2n ** 63n || input < -(2n ** 63n))
          ? fail('bool_type', input)
          : intAsBool(pyNumber(input)!, input);
      }
      if (kind === 'float') {
        // An integral float goes through int_as_bool; 0.5 is a type error, not a parsing error.
        const asInt = floatAsInt(pyNumber(input)!, input);
        return asInt.ok ? intAsBool(asInt.value as number, input) : fail('bool_type', input);
      }
      return fail('bool_type', input);
    case 'list': {
      const accepted = kind === 'list' || (!strict && (kind === 'tuple' || kind === 'set'));
      if (!accepted) return fail('list_type', input);
      const out: unknown[] = [];
      const errors: LineError[] = [];
      (input as unknown[]).forEach((item, i) => {
        const r = run(node.items, item, strict);
        if (r.ok) out.push(r.value);
        else errors.push(...within(i, r.errors));
      });
      return errors.length ? { ok: false, errors } : ok(out);
    }
    case 'dict': {
      if (!isPyDict(input)) return fail('dict_type', input);
      const out: Record<string, unknown> = {};
      const errors: LineError[] = [];
      for (const [key, value] of dictEntries(input)) {
        const loc = typeof key === 'number' ? key : pyValueStr(key);
        const k = run(node.keys, key, strict);
        const v = run(node.values, value, strict);
        if (!k.ok) errors.push(...within(loc, within('[key]', k.errors)));
        if (!v.ok) errors.push(...within(loc, v.errors));
        if (k.ok && v.ok) setOwn(out, pyValueStr(k.value), v.value);
      }
      return errors.length ? { ok: false, errors } : ok(out);
    }
    case 'literal':
    case 'enum': {
      const hit = node.values.find((v) => (strict ? pyKind(v) === kind : true) && pyEquals(v, input));
      if (hit !== undefined) return ok(hit);
      const type = node.k === 'literal' ? 'literal_error' : 'enum';
      return fail(type, input, `Input should be ${expectedRepr(node.values)}`);
    }
    case 'model': {
      if (!isPyDict(input) || (strict && !isPlainDict(input))) {
        return fail('model_type', input, `Input should be a valid dictionary or instance of ${node.name}`);
      }
      const given = new Map(dictEntries(input).filter(([k]) => typeof k === 'string') as [string, unknown][]);
      const out: Record<string, unknown> = {};
      const errors: LineError[] = [];
      for (const field of node.fields) {
        if (given.has(field.name)) {
          const r = run(field.node, given.get(field.name), strict);
          if (r.ok) setOwn(out, field.name, r.value);
          else errors.push(...within(field.name, r.errors));
        } else if (field.hasDefault) {
          setOwn(out, field.name, structuredClone(field.default));
        } else if (field.required) {
          errors.push({ type: 'missing', loc: [field.name], msg: MESSAGES.missing, input });
        }
      }
      return errors.length ? { ok: false, errors } : ok(out);
    }
    case 'nullable':
      return input === null || input === undefined ? ok(null) : run(node.inner, input, strict);
    case 'union': {
      // pydantic's smart mode: an exact (strict) match wins, then the first lax match, in order.
      for (const choice of node.choices) {
        const r = run(choice, input, true);
        if (r.ok) return r;
      }
      if (strict) return unionFailure(node, input, true);
      for (const choice of node.choices) {
        const r = run(choice, input, false);
        if (r.ok) return r;
      }
      return unionFailure(node, input, false);
    }
  }
}

function unionFailure(node: Node & { k: 'union' }, input: unknown, strict: boolean): Outcome {
  const errors: LineError[] = [];
  for (const choice of node.choices) {
    const r = run(choice, input, strict);
    if (!r.ok) errors.push(...within(nodeName(choice), r.errors));
  }
  return { ok: false, errors };
}

/** pydantic's `str(ValidationError)`. */
function formatValidationError(title: string, errors: LineError[]): string {
  const lines = errors.map((e) => {
    const loc = e.loc.length ? `${e.loc.join('.')}\n` : '';
    return (
      `${loc}  ${e.msg} [type=${e.type}, input_value=${truncateRepr(pyValueRepr(e.input))}, ` +
      `input_type=${pyTypeName(e.input)}]\n` +
      `    For further information visit https://errors.pydantic.dev/${PYDANTIC_DOCS_VERSION}/v/${e.type}`
    );
  });
  const n = errors.length;
  return `${n} validation error${n === 1 ? '' : 's'} for ${title}\n${lines.join('\n')}`;
}

/** pydantic-core shortens an input repr over 50 UTF-8 bytes to its first 25 and last 24 bytes. */
function truncateRepr(repr: string): string {
  const bytes = Buffer.from(repr, 'utf8');
  if (bytes.length <= 50) return repr;
  const isBoundary = (i: number) => i >= bytes.length || (bytes[i] & 0xc0) !== 0x80;
  let head = 25;
  while (!isBoundary(head)) head--;
  let tail = bytes.length - 24;
  while (!isBoundary(tail)) tail++;
  return `${bytes.subarray(0, head).toString('utf8')}...${bytes.subarray(tail).toString('utf8')}`;
}

/**
 * `TypeAdapter(type).validate_python(value)` in lax mode. Returns plain JS (a pydantic model as an object in
 * field order, an enum as its value). Throws `ValidationError` with pydantic's message.
 */
export function validateValue(value: unknown, type: FieldType): unknown {
  const node = nodeOf(type);
  const outcome = run(node, value, false);
  if (!outcome.ok) throw new ValidationError(formatValidationError(nodeName(node), outcome.errors));
  return outcome.value;
}

// ---------------------------------------------------------------------------------------------------------------
// parse_value

/** DSPy `find_enum_member`: the member whose value equals the identifier, else whose name does. */
function findEnumMember(type: FieldType & { kind: 'enum' }, identifier: unknown): unknown {
  for (const member of type.members) if (pyEquals(member.value, identifier)) return member.value;
  const kind = pyKind(identifier);
  if (kind === 'list' || kind === 'dict' || kind === 'set') {
    // `identifier in Enum.__members__` hashes the identifier.
    throw new TypeError(`unhashable type: '${kind}'`);
  }
  const byName = type.members.find((m) => m.name === identifier);
  if (byName) return byName.value;
  throw new ValueError(`${pyValueStr(identifier)} is not a valid name or value for the enum ${type.name}`);
}

/**
 * DSPy's Literal handling: exact match; else strip the text, drop a `Literal[…]`/`str[…]` wrapper and one pair
 * of matching quotes, and retry.
 */
function parseLiteral(allowed: LiteralValue[], value: unknown): unknown {
  if (allowed.some((a) => pyEquals(a, value))) return toPlainJs(value);
  if (typeof value === 'string') {
    let v = pyStrip(value);
    if ((v.startsWith('Literal[') || v.startsWith('str[')) && v.endsWith(']'))
      v = v.slice(v.indexOf('[') + 1, -1);
    const chars = Array.from(v);
    if (chars.length > 1 && chars[0] === chars[chars.length - 1] && `"'`.includes(chars[0])) {
      v = chars.slice(1, -1).join('');
    }
    if (allowed.some((a) => pyEquals(a, v))) return v;
  }
  throw new ValueError(`${pyValueRepr(value)} is not one of ${pyValueRepr(pyTuple([...allowed]))}`);
}

/**
 * DSPy `parse_value(value, annotation)`:
 * - `str` → Python `str(value)`; Enum → `find_enum_member`; Literal → DSPy's own matching (ValueError);
 * - a non-string value (JSONAdapter) → pydantic validation as is;
 * - `str | None` → validated as the text itself, so "None" stays the string "None" (fixture more_types_well_formed);
 * - otherwise json_repair → `ast.literal_eval` → raw text, then pydantic lax validation.
 */
export function parseValue(value: unknown, type: FieldType): unknown {
  if (type.kind === 'str') return pyValueStr(value);
  if (type.kind === 'enum') return findEnumMember(type, value);
  if (type.kind === 'literal') return parseLiteral(type.values, value);
  if (typeof value !== 'string') return validateValue(value, type);
  if (type.kind === 'optional' && type.inner.kind === 'str') return validateValue(value, type);
  return validateValue(readLmValue(value), type);
}
