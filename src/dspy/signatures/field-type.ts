/**
 * The annotation of a signature field: what Python DSPy spells as `str`, `int`, `list[str]`, `Literal[...]`,
 * an Enum, a pydantic model, `str | None`… Each type knows its DSPy annotation name (`get_annotation_name`)
 * and its pydantic JSON schema (`TypeAdapter(t).json_schema()`), which is all the adapters need.
 */
export type JsonSchema = { [key: string]: unknown };
export type LiteralValue = string | number | boolean | null;

export type FieldType =
  | { kind: 'str' }
  | { kind: 'int' }
  | { kind: 'float' }
  | { kind: 'bool' }
  | { kind: 'any' }
  | { kind: 'list'; items: FieldType }
  | { kind: 'dict'; keys: FieldType; values: FieldType }
  | { kind: 'literal'; values: LiteralValue[] }
  | { kind: 'enum'; name: string; members: { name: string; value: string | number }[] }
  /** A pydantic model (or any named JSON-schema object): validated against its schema. */
  | { kind: 'object'; name: string; schema: JsonSchema }
  /** `X | None` (named `UnionType[X, NoneType]`) or `Optional[X]` (named `Optional[X]`). */
  | { kind: 'optional'; inner: FieldType; spelling: 'pipe' | 'optional' };

export const t = {
  str: (): FieldType => ({ kind: 'str' }),
  int: (): FieldType => ({ kind: 'int' }),
  float: (): FieldType => ({ kind: 'float' }),
  bool: (): FieldType => ({ kind: 'bool' }),
  any: (): FieldType => ({ kind: 'any' }),
  list: (items: FieldType = { kind: 'str' }): FieldType => ({ kind: 'list', items }),
  dict: (keys: FieldType, values: FieldType): FieldType => ({ kind: 'dict', keys, values }),
  literal: (...values: LiteralValue[]): FieldType => ({ kind: 'literal', values }),
  /** An Enum; `members` maps member names to values (`{ SCIENCE: 'science' }`). */
  enum: (name: string, members: Record<string, string | number>): FieldType => ({
    kind: 'enum',
    name,
    members: Object.entries(members).map(([n, value]) => ({ name: n, value })),
  }),
  object: (name: string, schema: JsonSchema): FieldType => ({ kind: 'object', name, schema }),
  optional: (inner: FieldType, spelling: 'pipe' | 'optional' = 'pipe'): FieldType => ({
    kind: 'optional',
    inner,
    spelling,
  }),
};

/** Python's repr of a str as used in `Literal['a', "it's"]`. */
export function pyStrRepr(value: string): string {
  const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
  const escaped = value
    .replace(/\\/g, '\\\\')
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r')
    .replace(/\t/g, '\\t');
  return quote === "'" ? `'${escaped.replace(/'/g, "\\'")}'` : `"${escaped}"`;
}

function literalValueName(value: LiteralValue): string {
  if (typeof value === 'string') return pyStrRepr(value);
  if (value === null) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return String(value);
}

/** `dspy.adapters.utils.get_annotation_name`. */
export function annotationName(type: FieldType): string {
  switch (type.kind) {
    case 'str':
    case 'int':
    case 'float':
    case 'bool':
      return type.kind;
    case 'any':
      return 'Any';
    case 'list':
      return `list[${annotationName(type.items)}]`;
    case 'dict':
      return `dict[${annotationName(type.keys)}, ${annotationName(type.values)}]`;
    case 'literal':
      return `Literal[${type.values.map(literalValueName).join(', ')}]`;
    case 'enum':
    case 'object':
      return type.name;
    case 'optional':
      return type.spelling === 'pipe'
        ? `UnionType[${annotationName(type.inner)}, NoneType]`
        : `Optional[${annotationName(type.inner)}]`;
  }
}

function literalSchema(values: LiteralValue[]): JsonSchema {
  const kinds = new Set(values.map((v) => (v === null ? 'null' : typeof v)));
  const schema: JsonSchema = values.length === 1 ? { const: values[0] } : { enum: values };
  if (kinds.size === 1) {
    const kind = [...kinds][0];
    const map: Record<string, string> = {
      string: 'string',
      number: 'integer',
      boolean: 'boolean',
      null: 'null',
    };
    if (kind === 'number' && values.some((v) => !Number.isInteger(v))) schema.type = 'number';
    else schema.type = map[kind];
  }
  return schema;
}

/** pydantic's `TypeAdapter(t).json_schema()` for the types we model (key order as pydantic emits it). */
export function jsonSchemaOf(type: FieldType): JsonSchema {
  switch (type.kind) {
    case 'str':
      return { type: 'string' };
    case 'int':
      return { type: 'integer' };
    case 'float':
      return { type: 'number' };
    case 'bool':
      return { type: 'boolean' };
    case 'any':
      return {};
    case 'list':
      return { items: jsonSchemaOf(type.items), type: 'array' };
    case 'dict':
      return { additionalProperties: jsonSchemaOf(type.values), type: 'object' };
    case 'literal':
      return literalSchema(type.values);
    case 'enum': {
      const values = type.members.map((m) => m.value);
      return {
        enum: values,
        title: type.name,
        type: values.every((v) => typeof v === 'string') ? 'string' : 'integer',
      };
    }
    case 'object':
      return type.schema;
    case 'optional':
      return { anyOf: [jsonSchemaOf(type.inner), { type: 'null' }] };
  }
}

/** Whether `None` is a valid value (DSPy fills a missing output with None when the annotation admits it). */
export function admitsNone(type: FieldType): boolean {
  return (
    type.kind === 'optional' || type.kind === 'any' || (type.kind === 'literal' && type.values.includes(null))
  );
}

/** An output of open-ended mapping type forces JSON-object mode (DSPy's `_has_open_ended_mapping`). */
export function isOpenEndedMapping(type: FieldType): boolean {
  if (type.kind === 'dict') return true;
  if (type.kind === 'optional') return isOpenEndedMapping(type.inner);
  if (type.kind === 'list') return isOpenEndedMapping(type.items);
  return false;
}

const SIMPLE: Record<string, () => FieldType> = {
  str: t.str,
  int: t.int,
  float: t.float,
  bool: t.bool,
  Any: t.any,
  list: () => t.list(t.str()),
};

/** Split a bracketed argument list on top-level commas. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let current = '';
  for (const ch of text) {
    if (quote) {
      current += ch;
      if (ch === quote) quote = null;
      continue;
    }
    if (ch === "'" || ch === '"') quote = ch;
    else if (ch === '[') depth++;
    else if (ch === ']') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current.trim());
      current = '';
    } else current += ch;
  }
  if (current.trim()) parts.push(current.trim());
  return parts;
}

function parseLiteralValue(text: string): LiteralValue {
  if (/^'.*'$|^".*"$/s.test(text)) return text.slice(1, -1);
  if (text === 'True' || text === 'False') return text === 'True';
  if (text === 'None') return null;
  const n = Number(text);
  if (text !== '' && Number.isFinite(n)) return n;
  throw new TypeError(`unsupported Literal value ${text}`);
}

/**
 * Parse a Python annotation as written in a DSPy string signature (`int`, `list[str]`, `dict[str, int]`,
 * `Literal['a', 'b']`, `Optional[str]`, `str | None`). Named classes (enums, models) come from `custom`.
 */
export function parseTypeName(text: string, custom: Record<string, FieldType> = {}): FieldType {
  const src = text.trim();
  const pipe = splitTopLevelPipe(src);
  if (pipe.length > 1) {
    const nonNone = pipe.filter((p) => p !== 'None' && p !== 'NoneType');
    if (nonNone.length === 1 && nonNone.length < pipe.length)
      return t.optional(parseTypeName(nonNone[0], custom));
    throw new TypeError(`unsupported union type "${text}"`);
  }
  if (custom[src]) return custom[src];
  if (SIMPLE[src]) return SIMPLE[src]();
  const m = /^(\w+)\[(.*)\]$/s.exec(src);
  if (m) {
    const [, head, inner] = m;
    const args = splitTopLevel(inner);
    switch (head) {
      case 'list':
      case 'List':
        if (args.length === 1) return t.list(parseTypeName(args[0], custom));
        break;
      case 'dict':
      case 'Dict':
        if (args.length === 2) return t.dict(parseTypeName(args[0], custom), parseTypeName(args[1], custom));
        break;
      case 'Optional':
        if (args.length === 1) return t.optional(parseTypeName(args[0], custom), 'optional');
        break;
      case 'Literal':
        if (args.length >= 1) return t.literal(...args.map(parseLiteralValue));
        break;
    }
  }
  throw new TypeError(`unknown field type "${src}"`);
}

function splitTopLevelPipe(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '[') depth++;
    else if (ch === ']') depth--;
    if (ch === '|' && depth === 0) {
      parts.push(current.trim());
      current = '';
    } else current += ch;
  }
  parts.push(current.trim());
  return parts;
}
