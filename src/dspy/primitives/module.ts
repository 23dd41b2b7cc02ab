import { readFile, rename, writeFile } from 'node:fs/promises';
import { canonicalJson } from '../clients/cache-key';
import { PyFloat } from '../utils/python';
import { settings } from '../utils/settings';
import { UsageTracker } from '../utils/usage-tracker';
import { Prediction } from './prediction';

/** Implemented by predictors (DSPy `Parameter`): the units whose state is saved and optimized. */
export interface Parameter {
  readonly isParameter: true;
  dumpState(): Record<string, unknown>;
  /** Validate a state without applying it; throws a message naming the problem. */
  checkState(state: unknown): void;
  loadState(state: unknown): unknown;
  reset(): void;
}

export function isParameter(value: unknown): value is Parameter {
  return !!value && typeof value === 'object' && (value as Parameter).isParameter === true;
}

/** The error for a state file that cannot be applied; names the file, the predictor and the problem. */
export class StateLoadError extends Error {
  constructor(
    message: string,
    readonly path: string | null = null,
    readonly predictor: string | null = null,
  ) {
    super(message);
    this.name = 'StateLoadError';
  }
}

/** The versions DSPy writes into `metadata.dependency_versions`; we write DSPy's so Python loads the file quietly. */
export const DEPENDENCY_VERSIONS = { python: '3.11', dspy: '3.3.1', cloudpickle: '3.1' };

export interface CallOptions {
  signal?: AbortSignal;
}

/**
 * DSPy `Module`: a program built from predictors. Subclasses implement `forward`; callers use `call`, which
 * opens the usage tracker for the outermost call (DSPy `Module.__call__`).
 */
export abstract class Module {
  /** A compiled sub-module is frozen: its predictors are not listed (DSPy `_compiled`). */
  compiled = false;

  abstract forward(inputs: Record<string, unknown>): Promise<Prediction>;

  async call(inputs: Record<string, unknown>, options: CallOptions = {}): Promise<Prediction> {
    const ctx = settings.callContext();
    const signal = options.signal ?? ctx?.signal;
    if (settings.get('trackUsage') && !ctx?.usageTracker) {
      const tracker = new UsageTracker();
      const output = await settings.runWith({ ...ctx, usageTracker: tracker, signal }, () =>
        this.forward(inputs),
      );
      if (output instanceof Prediction) output.setLmUsage(tracker.totals());
      return output;
    }
    if (signal !== ctx?.signal) return settings.runWith({ ...ctx, signal }, () => this.forward(inputs));
    return this.forward(inputs);
  }

  /** DSPy `named_parameters`: attributes, then lists (`name[i]`) and plain objects (`name['k']`), recursively. */
  namedParameters(): [string, Parameter][] {
    const found: [string, Parameter][] = [];
    const seen = new Set<unknown>();
    const add = (name: string, value: unknown): void => {
      if (isParameter(value)) {
        if (!seen.has(value)) {
          seen.add(value);
          found.push([name, value]);
        }
      } else if (value instanceof Module) {
        if (!value.compiled) for (const [sub, p] of value.namedParameters()) add(`${name}.${sub}`, p);
      }
    };
    if (isParameter(this)) add('self', this);
    for (const [name, value] of Object.entries(this)) {
      if (isParameter(value)) add(name, value);
      else if (value instanceof Module) {
        if (!value.compiled) for (const [sub, p] of value.namedParameters()) add(`${name}.${sub}`, p);
      } else if (Array.isArray(value)) value.forEach((item, i) => add(`${name}[${i}]`, item));
      else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
        for (const [k, item] of Object.entries(value)) add(`${name}['${k}']`, item);
      }
    }
    return found;
  }

  namedPredictors(): [string, Parameter][] {
    return this.namedParameters();
  }

  predictors(): Parameter[] {
    return this.namedPredictors().map(([, p]) => p);
  }

  /** DSPy `dump_state`: `{predictor name: predictor state}`. */
  dumpState(): Record<string, unknown> {
    return Object.fromEntries(this.namedParameters().map(([name, p]) => [name, p.dumpState()]));
  }

  /**
   * DSPy `load_state`, all-or-nothing: every predictor's state is checked before any is applied, so a bad
   * file never half-applies.
   */
  loadState(state: unknown, source: string | null = null): this {
    const where = source ? `${source}: ` : '';
    if (!state || typeof state !== 'object' || Array.isArray(state)) {
      throw new StateLoadError(`${where}program state must be a JSON object`, source);
    }
    const record = state as Record<string, unknown>;
    const params = this.namedParameters();
    const expected = params.map(([n]) => n);
    const present = Object.keys(record).filter((k) => k !== 'metadata');
    const missing = expected.filter((n) => !(n in record));
    const unknown = present.filter((k) => !expected.includes(k));
    if (missing.length || unknown.length) {
      throw new StateLoadError(
        `${where}predictor names do not match the program: expected [${expected.join(', ')}], ` +
          `found [${present.join(', ')}]` +
          (missing.length ? `; missing [${missing.join(', ')}]` : '') +
          (unknown.length ? `; unknown [${unknown.join(', ')}]` : ''),
        source,
        missing[0] ?? unknown[0] ?? null,
      );
    }
    for (const [name, p] of params) {
      try {
        p.checkState(record[name]);
      } catch (e) {
        throw new StateLoadError(`${where}predictor "${name}": ${(e as Error).message}`, source, name);
      }
    }
    for (const [name, p] of params) p.loadState(record[name]);
    return this;
  }

  /** DSPy `save(path, save_program=False)` for `.json`: 2-space indent, final newline, DSPy's metadata. */
  async save(path: string): Promise<void> {
    if (!path.endsWith('.json')) {
      throw new StateLoadError(
        `${path}: only .json state files are supported (DSPy's .pkl needs Python)`,
        path,
      );
    }
    const body = { ...this.dumpState(), metadata: { dependency_versions: DEPENDENCY_VERSIONS } };
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, serializeState(body), 'utf8');
    await rename(tmp, path);
  }

  /** DSPy `load(path)`; errors name the file, the predictor and the problem. */
  async load(path: string): Promise<this> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw new StateLoadError(`${path}: cannot read program state: ${(e as Error).message}`, path);
    }
    let state: unknown;
    try {
      state = JSON.parse(text);
    } catch (e) {
      throw new StateLoadError(`${path}: program state is not valid JSON: ${(e as Error).message}`, path);
    }
    return this.loadState(state, path);
  }

  /** Give every predictor this LM (DSPy `set_lm`). */
  setLm(lm: unknown): void {
    for (const p of this.predictors()) (p as unknown as { lm: unknown }).lm = lm;
  }
}

/** orjson `OPT_INDENT_2 | OPT_APPEND_NEWLINE`, floats kept Python-style. */
export function serializeState(state: unknown): string {
  return `${stringifyState(state, 0)}\n`;
}

function stringifyState(value: unknown, depth: number): string {
  const pad = '  '.repeat(depth + 1);
  const close = '  '.repeat(depth);
  // orjson writes floats as the cache key does: `0.3`, `1.0`, `1e-7`.
  if (value instanceof PyFloat) return canonicalJson(value);
  if (typeof value === 'number') return canonicalJson(value);
  if (value === undefined || value === null) return 'null';
  if (Array.isArray(value)) {
    if (!value.length) return '[]';
    return `[\n${value.map((v) => pad + stringifyState(v, depth + 1)).join(',\n')}\n${close}]`;
  }
  if (typeof value === 'object') {
    const toJSON = (value as { toJSON?: () => unknown }).toJSON;
    if (typeof toJSON === 'function') return stringifyState(toJSON.call(value), depth);
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (!entries.length) return '{}';
    return `{\n${entries.map(([k, v]) => `${pad}${JSON.stringify(k)}: ${stringifyState(v, depth + 1)}`).join(',\n')}\n${close}}`;
  }
  return JSON.stringify(value);
}
