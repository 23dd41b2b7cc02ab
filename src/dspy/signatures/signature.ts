import { cleandoc } from '../utils/python';
import { FieldType, parseTypeName, t } from './field-type';

export type FieldRole = 'input' | 'output';

/** pydantic constraints DSPy lists under a field ("Constraints: …"); they are shown, never enforced. */
export interface FieldConstraints {
  gt?: number;
  ge?: number;
  lt?: number;
  le?: number;
  min_length?: number;
  max_length?: number;
  multiple_of?: number;
}

export interface FieldSpec {
  type?: FieldType;
  desc?: string;
  prefix?: string;
  /** Either pydantic-style bounds or DSPy's rendered text ("greater than or equal to: 0.0"). */
  constraints?: FieldConstraints | string;
  /** A default makes the field optional: DSPy fills a missing output with it. */
  default?: unknown;
}

export interface Field {
  readonly name: string;
  readonly role: FieldRole;
  readonly type: FieldType;
  /** `${name}` when not given, as DSPy stores it (and shows as an empty description). */
  readonly desc: string;
  readonly prefix: string;
  readonly constraints?: FieldConstraints | string;
  readonly hasDefault: boolean;
  readonly default?: unknown;
}

export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SignatureError';
  }
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** DSPy `infer_prefix`: snake_case and camelCase to Title Case, acronyms kept. */
export function inferPrefix(name: string): string {
  const s1 = name.replace(/(.)([A-Z][a-z]+)/g, '$1_$2');
  const s2 = s1.replace(/([a-z0-9])([A-Z])/g, '$1_$2');
  return s2
    .split('_')
    .map((w) => (isUpper(w) ? w : w.charAt(0).toUpperCase() + w.slice(1).toLowerCase()))
    .join(' ');
}

/** Python `str.isupper()`: has a cased character and no lowercase one. */
function isUpper(word: string): boolean {
  return /[A-Z]/.test(word) && !/[a-z]/.test(word);
}

function makeField(name: string, role: FieldRole, spec: FieldSpec = {}): Field {
  if (!IDENTIFIER.test(name)) throw new SignatureError(`invalid field name "${name}": must be an identifier`);
  const field: Field = {
    name,
    role,
    type: spec.type ?? t.str(),
    desc: spec.desc ?? `\${${name}}`,
    prefix: spec.prefix ?? `${inferPrefix(name)}:`,
    hasDefault: 'default' in spec,
    ...(spec.constraints ? { constraints: spec.constraints } : {}),
    ...('default' in spec ? { default: spec.default } : {}),
  };
  return Object.freeze(field);
}

export interface SignatureInit {
  /** The class name DSPy reports (`QASignature`; string signatures are `StringSignature`). */
  name?: string;
  instructions?: string;
  inputs: Record<string, FieldSpec>;
  outputs: Record<string, FieldSpec>;
}

/**
 * A DSPy Signature: ordered input and output fields plus instructions. Immutable: every `with*` method returns
 * a new signature, as DSPy's class-level operations do.
 */
export class Signature {
  readonly name: string;
  readonly instructions: string;
  readonly inputFields: readonly Field[];
  readonly outputFields: readonly Field[];

  private constructor(name: string, inputs: Field[], outputs: Field[], instructions?: string) {
    const seen = new Set<string>();
    for (const f of [...inputs, ...outputs]) {
      if (seen.has(f.name)) throw new SignatureError(`duplicate field name "${f.name}"`);
      seen.add(f.name);
    }
    this.name = name;
    this.inputFields = Object.freeze(inputs);
    this.outputFields = Object.freeze(outputs);
    this.instructions = instructions ?? Signature.defaultInstructions(inputs, outputs);
  }

  /** Define a signature in code, like a `dspy.Signature` subclass (instructions play the docstring's role). */
  static define(init: SignatureInit): Signature {
    const inputs = Object.entries(init.inputs).map(([n, s]) => makeField(n, 'input', s));
    const outputs = Object.entries(init.outputs).map(([n, s]) => makeField(n, 'output', s));
    const instructions = init.instructions === undefined ? undefined : cleandoc(init.instructions);
    return new Signature(init.name ?? 'StringSignature', inputs, outputs, instructions || undefined);
  }

  /**
   * DSPy's string form: `"question: str, context -> answer: int"`. Types default to `str`; named classes
   * (enums, models) come from `types`.
   */
  static parse(text: string, instructions?: string, types: Record<string, FieldType> = {}): Signature {
    const arrow = text.split('->');
    if (arrow.length !== 2) {
      throw new SignatureError(
        `invalid signature "${text}": expected exactly one "->" between inputs and outputs`,
      );
    }
    const side = (part: string, role: FieldRole): Field[] => {
      const trimmed = part.trim();
      if (!trimmed) return [];
      return splitFields(trimmed).map((item) => {
        const colon = item.indexOf(':');
        const name = (colon < 0 ? item : item.slice(0, colon)).trim();
        if (!IDENTIFIER.test(name)) {
          throw new SignatureError(`invalid signature "${text}": "${item}" is not a field name`);
        }
        let type: FieldType = t.str();
        if (colon >= 0) {
          try {
            type = parseTypeName(item.slice(colon + 1), types);
          } catch (e) {
            throw new SignatureError(`invalid signature "${text}": field "${name}": ${(e as Error).message}`);
          }
        }
        return makeField(name, role, { type });
      });
    };
    const outputs = side(arrow[1], 'output');
    if (outputs.length === 0) throw new SignatureError(`invalid signature "${text}": no output fields`);
    return new Signature('StringSignature', side(arrow[0], 'input'), outputs, instructions);
  }

  /** DSPy `_default_instructions`. */
  static defaultInstructions(inputs: readonly Field[], outputs: readonly Field[]): string {
    const names = (fs: readonly Field[]) => fs.map((f) => `\`${f.name}\``).join(', ');
    return `Given the fields ${names(inputs)}, produce the fields ${names(outputs)}.`;
  }

  /** Inputs then outputs, DSPy's `signature.fields` order (and the order of saved `fields`). */
  get fields(): Field[] {
    return [...this.inputFields, ...this.outputFields];
  }

  field(name: string): Field | undefined {
    return this.fields.find((f) => f.name === name);
  }

  /** `"question -> reasoning, answer"` (DSPy `signature.signature`). */
  toString(): string {
    const names = (fs: readonly Field[]) => fs.map((f) => f.name).join(', ');
    return `${names(this.inputFields)} -> ${names(this.outputFields)}`;
  }

  withInstructions(instructions: string): Signature {
    return new Signature(this.name, [...this.inputFields], [...this.outputFields], instructions);
  }

  /** DSPy `with_updated_fields(name, desc=…, prefix=…, type_=…)`. */
  withUpdatedField(name: string, update: Partial<Pick<Field, 'desc' | 'prefix' | 'type'>>): Signature {
    if (!this.field(name)) throw new SignatureError(`signature ${this.name} has no field "${name}"`);
    const apply = (f: Field): Field => (f.name === name ? Object.freeze({ ...f, ...update }) : f);
    return new Signature(
      this.name,
      this.inputFields.map(apply),
      this.outputFields.map(apply),
      this.instructions,
    );
  }

  /** DSPy `insert(index, name, field)`: -1 appends. Extending yields a `StringSignature`, as in DSPy. */
  insert(index: number, name: string, role: FieldRole, spec: FieldSpec = {}): Signature {
    const field = makeField(name, role, spec);
    const list = role === 'input' ? [...this.inputFields] : [...this.outputFields];
    const at = index < 0 ? list.length + 1 + index : index;
    list.splice(at, 0, field);
    return role === 'input'
      ? new Signature('StringSignature', list, [...this.outputFields], this.instructions)
      : new Signature('StringSignature', [...this.inputFields], list, this.instructions);
  }

  prepend(name: string, role: FieldRole, spec: FieldSpec = {}): Signature {
    return this.insert(0, name, role, spec);
  }

  append(name: string, role: FieldRole, spec: FieldSpec = {}): Signature {
    return this.insert(-1, name, role, spec);
  }

  /** DSPy `Signature.dump_state`: positional fields without names. */
  dumpState(): SignatureState {
    return {
      instructions: this.instructions,
      fields: this.fields.map((f) => ({ prefix: f.prefix, description: f.desc })),
    };
  }

  /**
   * DSPy `Signature.load_state`: saved prefixes and descriptions are applied by position; names and types
   * always come from code. Unlike DSPy (zip with strict=False) a field-count mismatch is an error, because
   * it means the file belongs to another program.
   */
  loadState(state: SignatureState): Signature {
    const fields = this.fields;
    if (!state || typeof state.instructions !== 'string' || !Array.isArray(state.fields)) {
      throw new SignatureError('signature state must have "instructions" (string) and "fields" (array)');
    }
    if (state.fields.length !== fields.length) {
      throw new SignatureError(
        `signature state has ${state.fields.length} fields but the program's signature has ${fields.length} ` +
          `(${fields.map((f) => f.name).join(', ')})`,
      );
    }
    state.fields.forEach((s, i) => {
      if (!s || typeof s.prefix !== 'string' || typeof s.description !== 'string') {
        throw new SignatureError(`signature state field ${i} must have string "prefix" and "description"`);
      }
    });
    const apply = (f: Field, i: number): Field =>
      Object.freeze({ ...f, prefix: state.fields[i].prefix, desc: state.fields[i].description });
    const nIn = this.inputFields.length;
    return new Signature(
      this.name,
      this.inputFields.map((f, i) => apply(f, i)),
      this.outputFields.map((f, i) => apply(f, nIn + i)),
      state.instructions,
    );
  }

  equals(other: Signature): boolean {
    return JSON.stringify(this.describe()) === JSON.stringify(other.describe());
  }

  private describe(): unknown {
    return [this.instructions, this.fields.map((f) => [f.name, f.role, f.type, f.desc, f.prefix])];
  }
}

export interface SignatureState {
  instructions: string;
  fields: { prefix: string; description: string }[];
}

function splitFields(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '[') depth++;
    else if (ch === ']') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current.trim());
      current = '';
    } else current += ch;
  }
  parts.push(current.trim());
  if (parts.some((p) => p === ''))
    throw new SignatureError(`invalid signature field list "${text}": empty field`);
  return parts;
}
