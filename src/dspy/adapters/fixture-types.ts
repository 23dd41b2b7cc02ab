/**
 * The golden fixtures describe a signature field by DSPy's annotation name (`get_annotation_name`) plus pydantic's
 * JSON schema of it. This turns that pair back into a FieldType (used by the specs and the conformance runner).
 */
import { FieldType, JsonSchema, parseTypeName, t } from '../signatures/field-type';

export interface FixtureField {
  type: string;
  type_json_schema?: object;
}

/**
 * The fixtures do not record Enum member names, only values. Member names are taken to be the upper-cased
 * values (`science` → `SCIENCE`), the usual Python spelling; only lookup by name depends on this guess.
 */
function enumMemberName(value: string | number): string {
  return typeof value === 'string' ? value.toUpperCase().replace(/\W/g, '_') : `VALUE_${value}`;
}

/** A named class (Enum or pydantic model) from its JSON schema. */
function namedType(name: string, schema: JsonSchema, defs: unknown): FieldType {
  if (Array.isArray(schema.enum)) {
    const values = schema.enum as (string | number)[];
    return t.enum(name, Object.fromEntries(values.map((v) => [enumMemberName(v), v])));
  }
  // Nested models reference the root `$defs`; keep them reachable from the model's own schema.
  return t.object(name, defs && !schema.$defs ? { ...schema, $defs: defs } : schema);
}

/** `UnionType[a, b]` (how DSPy names `a | b`) back to `a | b`, at any depth. */
function rewriteUnionTypes(text: string): string {
  const start = text.indexOf('UnionType[');
  if (start === -1) return text;
  const open = start + 'UnionType'.length;
  let depth = 0;
  let close = open;
  for (; close < text.length; close++) {
    if (text[close] === '[') depth++;
    else if (text[close] === ']' && --depth === 0) break;
  }
  const args: string[] = [];
  let current = '';
  depth = 0;
  for (const ch of text.slice(open + 1, close)) {
    if (ch === '[') depth++;
    else if (ch === ']') depth--;
    if (ch === ',' && depth === 0) {
      args.push(current.trim());
      current = '';
    } else current += ch;
  }
  args.push(current.trim());
  const inner = args.map(rewriteUnionTypes).join(' | ');
  return text.slice(0, start) + inner + rewriteUnionTypes(text.slice(close + 1));
}

/**
 * A fixture field (`{"type": "Topic", "type_json_schema": {...}}`) as a FieldType: named classes come from the
 * schema (its title, or its `$defs`), everything else from the annotation name.
 */
export function fieldTypeFromFixture(field: FixtureField): FieldType {
  const schema = field.type_json_schema as JsonSchema | undefined;
  const custom: Record<string, FieldType> = {};
  if (schema) {
    const defs = schema.$defs as Record<string, JsonSchema> | undefined;
    for (const [name, def] of Object.entries(defs ?? {})) custom[name] = namedType(name, def, defs);
    const isNamed = Array.isArray(schema.enum) || (schema.type === 'object' && schema.properties);
    if (typeof schema.title === 'string' && isNamed)
      custom[schema.title] = namedType(schema.title, schema, defs);
  }
  return parseTypeName(rewriteUnionTypes(field.type), custom);
}
