import { isDeepStrictEqual } from 'node:util';

/** Values as plain JSON for comparison (PyFloat → number, BigInt → string, Examples → dicts). */
export function plain(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
  ) as unknown;
}

/** The first place where `actual` differs from `expected`, as a readable line; null when equal. */
export function firstDifference(expected: unknown, actual: unknown, path = '$'): string | null {
  if (isDeepStrictEqual(expected, actual)) return null;
  if (typeof expected === 'string' && typeof actual === 'string') {
    let at = 0;
    while (at < expected.length && expected[at] === actual[at]) at++;
    const show = (s: string) => JSON.stringify(s.slice(Math.max(0, at - 40), at + 60));
    return `${path}: strings differ at char ${at}\n      expected …${show(expected)}\n      actual   …${show(actual)}`;
  }
  if (expected && actual && typeof expected === 'object' && typeof actual === 'object') {
    if (Array.isArray(expected) !== Array.isArray(actual))
      return `${path}: expected ${kind(expected)}, got ${kind(actual)}`;
    if (Array.isArray(expected) && Array.isArray(actual) && expected.length !== actual.length) {
      return `${path}: expected ${expected.length} items, got ${actual.length}`;
    }
    const keys = new Set([...Object.keys(expected), ...Object.keys(actual)]);
    for (const k of keys) {
      if (!(k in expected))
        return `${path}.${k}: unexpected key (value ${short(actual[k as keyof typeof actual])})`;
      if (!(k in actual))
        return `${path}.${k}: missing (expected ${short(expected[k as keyof typeof expected])})`;
      const d = firstDifference(
        expected[k as keyof typeof expected],
        actual[k as keyof typeof actual],
        `${path}.${k}`,
      );
      if (d) return d;
    }
    return null;
  }
  return `${path}: expected ${short(expected)}, got ${short(actual)}`;
}

function kind(v: unknown): string {
  return Array.isArray(v) ? 'array' : typeof v;
}

function short(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}
