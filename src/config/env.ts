/** A configuration value that cannot be used; the message names the variable, as boot must. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

/** Typed readers over process.env for one config namespace; every failure names the variable. */
export function readEnv(namespace: string, source: NodeJS.ProcessEnv = process.env) {
  const raw = (name: string): string | undefined => {
    const v = source[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const fail = (name: string, value: string, expected: string): never => {
    throw new ConfigError(
      `Invalid configuration (${namespace}): ${name}=${JSON.stringify(value)} ${expected}`,
    );
  };
  return {
    string(name: string, fallback: string): string {
      return raw(name) ?? fallback;
    },
    optionalString(name: string): string | undefined {
      return raw(name);
    },
    bool(name: string, fallback: boolean): boolean {
      const v = raw(name);
      if (v === undefined) return fallback;
      if (TRUE.has(v.toLowerCase())) return true;
      if (FALSE.has(v.toLowerCase())) return false;
      return fail(name, v, 'must be true or false');
    },
    int(name: string, fallback: number, range: { min?: number; max?: number } = {}): number {
      const v = raw(name);
      if (v === undefined) return fallback;
      if (!/^-?\d+$/.test(v)) return fail(name, v, 'must be an integer');
      const n = Number(v);
      if (range.min !== undefined && n < range.min) return fail(name, v, `must be >= ${range.min}`);
      if (range.max !== undefined && n > range.max) return fail(name, v, `must be <= ${range.max}`);
      return n;
    },
    number(name: string, fallback: number | null, range: { min?: number; max?: number } = {}): number | null {
      const v = raw(name);
      if (v === undefined) return fallback;
      const n = Number(v);
      if (!Number.isFinite(n)) return fail(name, v, 'must be a number');
      if (range.min !== undefined && n < range.min) return fail(name, v, `must be >= ${range.min}`);
      if (range.max !== undefined && n > range.max) return fail(name, v, `must be <= ${range.max}`);
      return n;
    },
    oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
      const v = raw(name);
      if (v === undefined) return fallback;
      if (!allowed.includes(v as T)) return fail(name, v, `must be one of ${allowed.join(', ')}`);
      return v as T;
    },
  };
}
