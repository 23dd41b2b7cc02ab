/**
 * What the optimizers need from a program beyond `Module`: DSPy's `deepcopy()` and `reset_copy()`, its Predict
 * predictors, and a pseudo-code description for the program-aware proposer.
 */
import type { LM } from '../clients/lm';
import { ChainOfThought } from '../predict/chain-of-thought';
import { Predict } from '../predict/predict';
import { Example } from '../primitives/example';
import { Module } from '../primitives/module';
import type { Signature } from '../signatures/signature';
import { pyValueRepr } from '../utils/python-literal';
import { pyStrLiteral } from '../utils/python';

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return !!value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype;
}

function cloneValue(value: unknown, seen: Map<object, unknown>): unknown {
  if (value instanceof Module) return cloneModule(value, seen);
  if (value instanceof Example) return value.copy();
  if (Array.isArray(value)) return value.map((v) => cloneValue(v, seen));
  if (isPlainObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, cloneValue(v, seen)]));
  }
  // LMs, signatures (immutable), functions and other instances are shared, as DSPy's deepcopy falls back to.
  return value;
}

function cloneModule<T extends Module>(module: T, seen: Map<object, unknown>): T {
  const known = seen.get(module);
  if (known) return known as T;
  const copy = Object.create(Object.getPrototypeOf(module) as object) as T;
  seen.set(module, copy);
  for (const key of Reflect.ownKeys(module)) {
    const descriptor = Object.getOwnPropertyDescriptor(module, key)!;
    if ('value' in descriptor) descriptor.value = cloneValue(descriptor.value, seen);
    Object.defineProperty(copy, key, descriptor);
  }
  return copy;
}

/** DSPy `Module.deepcopy()`: sub-modules and predictors are copied, demos too; LMs are shared. */
export function deepcopyProgram<T extends Module>(program: T): T {
  return cloneModule(program, new Map());
}

/** DSPy `reset_copy()`: a deep copy whose predictors are reset (no demos, no LM, no traces). */
export function resetCopy<T extends Module>(program: T): T {
  const copy = deepcopyProgram(program);
  for (const p of copy.predictors()) p.reset();
  return copy;
}

/** The program's predictors as `Predict` instances (the optimizers change their instructions and demos). */
export function namedPredicts(program: Module): [string, Predict][] {
  return program.namedPredictors().map(([name, p]) => {
    if (!(p instanceof Predict))
      throw new TypeError(`predictor "${name}" is not a Predict; cannot optimize it`);
    return [name, p];
  });
}

/** DSPy `Example.__eq__`: same fields and values (input keys are not compared). Plain dicts never equal one. */
export function exampleEquals(a: unknown, b: unknown): boolean {
  if (!(a instanceof Example) || !(b instanceof Example)) return false;
  return JSON.stringify(a.toDict()) === JSON.stringify(b.toDict());
}

/**
 * `repr(list_of_examples)` with the input keys sorted, as `order_input_keys_in_string(trainset[a:b].__repr__())`
 * gives the dataset descriptor: `[Example({'question': '…'}) (input_keys={'question'}), …]`.
 */
export function examplesRepr(examples: readonly Example[]): string {
  const one = (ex: Example) => {
    const fields = Object.fromEntries(Object.entries(ex.toDict()).filter(([k]) => !k.startsWith('dspy_')));
    const keys = ex.inputKeys;
    const keysRepr = keys ? `{${keys.map(pyStrLiteral).sort().join(', ')}}` : 'None';
    return `Example(${pyValueRepr(fields)}) (input_keys=${keysRepr})`;
  };
  return `[${examples.map(one).join(', ')}]`;
}

function signatureClass(name: string, signature: Signature, skip: Set<string> = new Set()): string {
  const lines = [`class ${name}(dspy.Signature):`, `    """${signature.instructions}"""`, ''];
  for (const f of signature.fields) {
    if (skip.has(f.name)) continue;
    const kind = f.role === 'input' ? 'InputField' : 'OutputField';
    const desc = f.desc === `\${${f.name}}` ? '' : `desc=${JSON.stringify(f.desc)}`;
    lines.push(`    ${f.name} = dspy.${kind}(${desc})`);
  }
  return lines.join('\n');
}

function pascal(text: string): string {
  return text
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');
}

/**
 * Pseudo-code of a program for the program-aware proposer (PORT, optimizers.md §1.5(b): DSPy pastes the Python
 * source of the signature classes and the module; we render each predictor's signature as a DSPy class and the
 * module's attributes, plus its `forward` source). A bare Predict/ChainOfThought gets no module block, as in DSPy.
 */
export function describeProgram(program: Module): string {
  const custom = (program as { describe?: unknown }).describe;
  if (typeof custom === 'function') return String((custom as () => unknown).call(program));

  const header: string[] = [];
  const classNames = new Map<Predict, string>();
  const predicts = namedPredicts(program);
  const cotOf = new Map<Predict, ChainOfThought>();
  const visit = (value: unknown) => {
    if (value instanceof ChainOfThought) cotOf.set(value.predict, value);
    if (value instanceof Module) Object.values(value).forEach(visit);
  };
  visit(program);
  for (const [name, p] of predicts) {
    // A ChainOfThought adds `reasoning` itself, so its signature is shown without it, as the user wrote it.
    const isCot = cotOf.has(p);
    let className = p.signature.name;
    if (className === 'StringSignature') {
      const owner = program.constructor.name.replace(/(Program|Module)$/, '');
      className =
        predicts.length === 1 && owner
          ? `${owner}Signature`
          : `${pascal(isCot ? name.replace(/\.predict$/, '') : name)}Signature`;
    }
    classNames.set(p, className);
    header.push(signatureClass(className, p.signature, isCot ? new Set(['reasoning']) : new Set()));
  }

  const attribute = (value: unknown): string | null => {
    if (value instanceof ChainOfThought) {
      return `dspy.ChainOfThought(${classNames.get(value.predict) ?? value.predict.signature.toString()})`;
    }
    if (value instanceof Predict)
      return `dspy.Predict(${classNames.get(value) ?? value.signature.toString()})`;
    if (value instanceof Module) return `${value.constructor.name}()`;
    return null;
  };
  if (program instanceof Predict || program.constructor === ChainOfThought)
    return `${header.join('\n\n')}\n\n`;

  const body: string[] = [];
  for (const [key, value] of Object.entries(program)) {
    const rendered = attribute(value);
    if (rendered) body.push(`        self.${key} = ${rendered}`);
  }
  const forward = (Object.getPrototypeOf(program) as { forward?: unknown }).forward;
  const source =
    typeof forward === 'function'
      ? (forward as () => unknown)
          .toString()
          .split('\n')
          .map((l, i) => (i === 0 ? `    ${l.trim()}` : l))
          .join('\n')
      : '';
  const module = [
    `class ${program.constructor.name}(dspy.Module):`,
    '    def __init__(self):',
    ...(body.length ? body : ['        pass']),
    '',
    source,
  ].join('\n');
  return `${header.join('\n\n')}\n\n${module}`;
}

/**
 * DSPy `lm.copy(rollout_id=…, temperature=…)`: a fresh sample. The rollout id is part of the cache key (never
 * sent upstream), so the request misses the cache once and is then cached under its own key.
 */
export function lmWithRollout(lm: LM, rolloutId: number, temperature: number): LM {
  const { temperature: _t, max_tokens: _m, max_completion_tokens: _c, ...rest } = lm.kwargs;
  return lm.copy({ temperature, kwargs: { ...rest, rollout_id: rolloutId } });
}
