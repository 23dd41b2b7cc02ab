/**
 * A seeded random number generator for the optimizers: sfc32 (Chris Doty-Humphrey's Small Fast Counting
 * generator, PractRand-clean, 128-bit state) seeded through splitmix32. It stands in for Python's
 * `random.Random(seed)`: runs are reproducible for a seed, but the values are not CPython's (bit parity would
 * need MT19937 plus CPython's `randbelow`/`sample`/`shuffle`; the reference asks for parity in counts and
 * structure only).
 */

/** splitmix32: spreads one 32-bit word into well-mixed state words. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a over the UTF-16 code units of a string: turns any seed key into 32 bits. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export type RngSeed = number | string;

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** `seed` is any integer or string; forks derive their seed from it, never from the stream's position. */
  constructor(readonly seed: RngSeed) {
    const mix = { s: hashString(`rng:${String(seed)}`) | 0 };
    this.a = splitmix32(mix) | 0;
    this.b = splitmix32(mix) | 0;
    this.c = splitmix32(mix) | 0;
    this.d = 1;
    // The generator's authors discard the first outputs so that similar seeds diverge.
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** The next 32 random bits. */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1) with 53 random bits (Python `random()`). */
  random(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** An integer in [0, n), unbiased (rejection sampling), for 1 <= n <= 2^32. */
  below(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32)
      throw new RangeError(`below(${n}): n must be in 1..2^32`);
    if (n === 1) return 0;
    const limit = 2 ** 32 - (2 ** 32 % n);
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return x % n;
  }

  /**
   * An integer in [lo, hi], both inclusive (Python `randint`). `hi` is clamped to at least `lo`: DSPy's
   * `randint(1, 0)` crash with `max_bootstrapped_demos=0` (issue #9938) becomes `lo`.
   */
  int(lo: number, hi: number): number {
    const top = Math.max(lo, hi);
    return lo + this.below(top - lo + 1);
  }

  /** One element, uniformly (Python `choice`). */
  choice<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('choice() from an empty sequence');
    return items[this.below(items.length)];
  }

  /** Shuffle in place (Fisher–Yates from the end, as Python's `shuffle`). */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }

  /** `k` distinct elements in random order (Python `sample`); the input is not modified. */
  sample<T>(items: readonly T[], k: number): T[] {
    if (k < 0 || k > items.length) throw new RangeError('Sample larger than population or is negative');
    const pool = [...items];
    for (let i = 0; i < k; i++) {
      const j = i + this.below(pool.length - i);
      [pool[i], pool[j]] = [pool[j], pool[i]];
    }
    return pool.slice(0, k);
  }

  /**
   * An index drawn with probability proportional to `weights` (numpy `choice(p=…)`); weights need not sum to 1.
   */
  weighted(weights: readonly number[]): number {
    const total = weights.reduce((s, w) => s + w, 0);
    if (!(total > 0)) throw new RangeError('weighted() needs a positive total weight');
    let u = this.random() * total;
    for (let i = 0; i < weights.length; i++) {
      u -= weights[i];
      if (u < 0) return i;
    }
    // Rounding can leave u at 0 after the last subtraction: the last positive weight wins.
    for (let i = weights.length - 1; i >= 0; i--) if (weights[i] > 0) return i;
    return weights.length - 1;
  }

  /**
   * An independent generator for one phase (`split`, `bootstrap`, `propose`, `minibatch`, `search`…). It depends
   * only on this generator's seed and the label, so adding trials never changes the demo sets.
   */
  fork(label: string): Rng {
    return new Rng(`${String(this.seed)}/${label}`);
  }
}

export function createRng(seed: RngSeed): Rng {
  return new Rng(seed);
}
