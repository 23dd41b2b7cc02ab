/**
 * DSPy `Example`: a dict of fields with a designated set of input keys. Fields are readable as properties
 * (`example.question`) as in Python; `get`/`toDict` are the typed way.
 */
export class Example {
  [field: string]: any;

  protected readonly _store: Record<string, unknown>;
  protected _inputKeys: Set<string> | null = null;

  constructor(fields: Record<string, unknown> | Example = {}) {
    const source = fields instanceof Example ? fields.toDict() : fields;
    this._store = { ...source };
    if (fields instanceof Example && fields._inputKeys) this._inputKeys = new Set(fields._inputKeys);
    return new Proxy(this, {
      get(target, prop, receiver) {
        if (typeof prop === 'string' && !(prop in target) && prop in target._store)
          return target._store[prop];
        return Reflect.get(target, prop, receiver) as unknown;
      },
      set(target, prop, value, receiver) {
        if (typeof prop === 'string' && !(prop in target)) {
          target._store[prop] = value;
          return true;
        }
        return Reflect.set(target, prop, value, receiver);
      },
      has(target, prop) {
        return (typeof prop === 'string' && prop in target._store) || Reflect.has(target, prop);
      },
    });
  }

  get(key: string, fallback?: unknown): unknown {
    return key in this._store ? this._store[key] : fallback;
  }

  set(key: string, value: unknown): this {
    this._store[key] = value;
    return this;
  }

  has(key: string): boolean {
    return key in this._store;
  }

  keys(): string[] {
    return Object.keys(this._store);
  }

  /** Mark which keys are inputs (DSPy `with_inputs`); returns a copy. */
  withInputs(...keys: string[]): Example {
    const copy = new Example(this);
    copy._inputKeys = new Set(keys);
    return copy;
  }

  get inputKeys(): string[] | null {
    return this._inputKeys ? [...this._inputKeys] : null;
  }

  /** The input fields only (DSPy `inputs()`), as an Example with the same input keys. */
  inputs(): Example {
    if (!this._inputKeys) throw new Error('inputs() requires input keys: call withInputs(...) first');
    const keys = this._inputKeys;
    const copy = new Example(Object.fromEntries(Object.entries(this._store).filter(([k]) => keys.has(k))));
    copy._inputKeys = new Set(keys);
    return copy;
  }

  /** The non-input fields (DSPy `labels()`). */
  labels(): Example {
    const keys = this._inputKeys ?? new Set<string>();
    return new Example(Object.fromEntries(Object.entries(this._store).filter(([k]) => !keys.has(k))));
  }

  /** A copy with some fields replaced (DSPy `copy(**kwargs)`). */
  copy(fields: Record<string, unknown> = {}): Example {
    const copy = new Example({ ...this._store, ...fields });
    if (this._inputKeys) copy._inputKeys = new Set(this._inputKeys);
    return copy;
  }

  /** Without some fields (DSPy `without(*keys)`). */
  without(...keys: string[]): Example {
    const drop = new Set(keys);
    const copy = new Example(Object.fromEntries(Object.entries(this._store).filter(([k]) => !drop.has(k))));
    if (this._inputKeys) copy._inputKeys = new Set(this._inputKeys);
    return copy;
  }

  toDict(): Record<string, unknown> {
    return { ...this._store };
  }

  toJSON(): Record<string, unknown> {
    return this.toDict();
  }
}
