import { Field, FieldConstraints } from '../signatures/signature';
import { annotationName, FieldType, jsonSchemaOf, JsonSchema } from '../signatures/field-type';
import { dedent, pyFloatRepr, PyFloat, pyJsonDumps, pySplitlines, pyStr, pyStrip } from '../utils/python';

/** DSPy `signatures/field.py:PYDANTIC_CONSTRAINT_MAP`, in its order of application (the caller's key order). */
const CONSTRAINT_TEXT: Record<keyof FieldConstraints, string> = {
  gt: 'greater than: ',
  ge: 'greater than or equal to: ',
  lt: 'less than: ',
  le: 'less than or equal to: ',
  min_length: 'minimum length: ',
  max_length: 'maximum length: ',
  multiple_of: 'a multiple of the given number: ',
};

export function constraintsText(field: Field): string {
  const c = field.constraints;
  if (!c) return '';
  if (typeof c === 'string') return c;
  return Object.entries(c)
    .filter(([k, v]) => k in CONSTRAINT_TEXT && v !== undefined)
    .map(([k, v]) => {
      const isFloat = field.type.kind === 'float' && (k === 'gt' || k === 'ge' || k === 'lt' || k === 'le');
      const value = isFloat ? pyFloatRepr(v as number) : pyStr(v);
      return CONSTRAINT_TEXT[k as keyof FieldConstraints] + value;
    })
    .join(', ');
}

/** `get_field_description_string`: note the whole list is stripped, leaving `(str): ` trailing spaces inside. */
export function fieldDescriptionString(fields: readonly Field[]): string {
  const lines = fields.map((f, i) => {
    const desc = f.desc === `\${${f.name}}` ? '' : f.desc;
    let line = `${i + 1}. \`${f.name}\` (${annotationName(f.type)}): ${desc}`;
    const constraints = constraintsText(f);
    if (constraints) line += `\nConstraints: ${constraints}`;
    return line;
  });
  return pyStrip(lines.join('\n'));
}

/** The system message's first block (ChatAdapter/JSONAdapter `format_field_description`). */
export function formatFieldDescription(inputs: readonly Field[], outputs: readonly Field[]): string {
  return (
    `Your input fields are:\n${fieldDescriptionString(inputs)}\n` +
    `Your output fields are:\n${fieldDescriptionString(outputs)}`
  );
}

/** `format_task_description`: every instruction line indented by 8 spaces after a trailing-space lead-in. */
export function formatTaskDescription(instructions: string): string {
  return (
    'In adhering to this structure, your objective is: ' +
    ['', ...pySplitlines(dedent(instructions))].join('\n        ')
  );
}

/** Key `type` first, then the other keys sorted, at every depth (DSPy's type-note schema rendering). */
export function sortSchemaForNote(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortSchemaForNote);
  if (value && typeof value === 'object' && !(value instanceof PyFloat)) {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).sort();
    const ordered = 'type' in obj ? ['type', ...keys.filter((k) => k !== 'type')] : keys;
    return Object.fromEntries(ordered.map((k) => [k, sortSchemaForNote(obj[k])]));
  }
  return value;
}

/** `translate_field_type`: the `{name}` placeholder and, for outputs, the "# note: the value you produce…" rule. */
export function translateFieldType(field: Field): string {
  const placeholder = `{${field.name}}`;
  if (field.role === 'input') return placeholder;
  const rule = typeRule(field.type);
  return rule ? `${placeholder}        # note: the value you produce ${rule}` : placeholder;
}

function typeRule(type: FieldType): string {
  switch (type.kind) {
    case 'str':
      return '';
    case 'bool':
      return 'must be True or False';
    case 'int':
      return 'must be a single int value';
    case 'float':
      return 'must be a single float value';
    case 'enum':
      return `must be one of: ${type.members.map((m) => pyStr(m.value)).join('; ')}`;
    case 'literal':
      return `must exactly match (no extra characters) one of: ${type.values.map((v) => pyStr(v)).join('; ')}`;
    default:
      return `must adhere to the JSON schema: ${pyJsonDumps(sortSchemaForNote(jsonSchemaOf(type)))}`;
  }
}

/** DSPy `_format_blob`: «text», or a fenced block when the text has newlines or guillemets. */
function formatBlob(blob: string): string {
  if (!blob.includes('\n') && !blob.includes('«') && !blob.includes('»')) return `«${blob}»`;
  return `«««\n    ${blob.replace(/\n/g, '\n    ')}\n»»»`;
}

/** `format_field_value`: a list for a `str` field is a numbered blob list; dicts/lists are JSON; others `str()`. */
export function formatFieldValue(field: Pick<Field, 'type'>, value: unknown): string {
  if (field.type.kind === 'str' && Array.isArray(value)) {
    if (value.length === 0) return 'N/A';
    if (value.length === 1) return formatBlob(pyStr(value[0]));
    return value.map((v, i) => `[${i + 1}] ${formatBlob(pyStr(v))}`).join('\n');
  }
  const jsonable = toJsonable(value);
  if (jsonable !== null && typeof jsonable === 'object' && !(jsonable instanceof PyFloat)) {
    return pyJsonDumps(jsonable);
  }
  // A float-typed field prints 3.0 for 3, as Python's str(float) does; JS numbers cannot carry that themselves.
  if (field.type.kind === 'float' && typeof jsonable === 'number') return pyFloatRepr(jsonable);
  return pyStr(jsonable);
}

/** pydantic `dump_python(mode="json")`-like: Maps and Sets become plain JSON containers; Dates ISO strings. */
export function toJsonable(value: unknown): unknown {
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), toJsonable(v)]));
  if (value instanceof Set) return [...value].map(toJsonable);
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(toJsonable);
  if (value && typeof value === 'object' && !(value instanceof PyFloat)) {
    const toJSON = (value as { toJSON?: () => unknown }).toJSON;
    if (typeof toJSON === 'function') return toJsonable(toJSON.call(value));
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonable(v)]));
  }
  return value;
}

/** The reminder's ` (must be formatted as a valid Python int)` for every non-`str` output. */
export function typeInfo(field: Field): string {
  return field.type.kind === 'str'
    ? ''
    : ` (must be formatted as a valid Python ${annotationName(field.type)})`;
}

export type { JsonSchema };

/** The parser's view of an output field. */
export function outputSpec(f: Field): {
  name: string;
  type: FieldType;
  hasDefault: boolean;
  default?: unknown;
} {
  return { name: f.name, type: f.type, hasDefault: f.hasDefault, default: f.default };
}
