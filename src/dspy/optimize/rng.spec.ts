import { createRng, hashString } from './rng';

describe('Rng', () => {
  it('pins the stream of a seed, so saved runs stay reproducible across versions', () => {
    const rng = createRng(9);
    expect([rng.nextUint32(), rng.nextUint32(), rng.nextUint32()]).toEqual([
      327331775, 1856901869, 1686111669,
    ]);
    expect(createRng(9).random()).toBe(0.07621286386507486);
  });

  it('repeats for the same seed and differs for another', () => {
    const a = createRng(123);
    const b = createRng(123);
    const c = createRng(124);
    const seq = (r: ReturnType<typeof createRng>) => Array.from({ length: 5 }, () => r.nextUint32());
    const first = seq(a);
    expect(seq(b)).toEqual(first);
    expect(seq(c)).not.toEqual(first);
  });

  it('forks by label, independently of how much of the parent stream was used', () => {
    const fresh = createRng(9).fork('search').nextUint32();
    const used = createRng(9);
    for (let i = 0; i < 100; i++) used.nextUint32();
    expect(used.fork('search').nextUint32()).toBe(fresh);
    expect(createRng(9).fork('bootstrap').nextUint32()).not.toBe(fresh);
    expect(createRng(10).fork('search').nextUint32()).not.toBe(fresh);
  });

  it('draws floats in [0, 1) with mean near 1/2', () => {
    const rng = createRng(1);
    const xs = Array.from({ length: 20_000 }, () => rng.random());
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(Math.abs(xs.reduce((s, x) => s + x, 0) / xs.length - 0.5)).toBeLessThan(0.01);
  });

  it('draws integers uniformly with both ends inclusive (chi-square over 6 bins)', () => {
    const rng = createRng(2);
    const counts = new Array<number>(6).fill(0);
    for (let i = 0; i < 60_000; i++) counts[rng.int(1, 6) - 1]++;
    const chi = counts.reduce((s, c) => s + (c - 10_000) ** 2 / 10_000, 0);
    // 5 degrees of freedom: p = 0.001 at 20.5.
    expect(chi).toBeLessThan(20.5);
    expect(Math.min(...counts)).toBeGreaterThan(0);
  });

  it('clamps randint(1, 0) to 1 instead of crashing (DSPy issue #9938)', () => {
    const rng = createRng(3);
    for (let i = 0; i < 10; i++) expect(rng.int(1, 0)).toBe(1);
  });

  it('shuffles into a permutation and samples without replacement, leaving the input alone', () => {
    const rng = createRng(4);
    const items = Array.from({ length: 20 }, (_, i) => i);
    const shuffled = rng.shuffle([...items]);
    expect([...shuffled].sort((a, b) => a - b)).toEqual(items);
    expect(shuffled).not.toEqual(items);
    const input = [1, 2, 3, 4, 5];
    const sample = rng.sample(input, 3);
    expect(new Set(sample).size).toBe(3);
    expect(sample.every((x) => input.includes(x))).toBe(true);
    expect(input).toEqual([1, 2, 3, 4, 5]);
    expect(rng.sample(input, 5).sort()).toEqual(input);
    expect(() => rng.sample(input, 6)).toThrow('Sample larger than population');
    expect(() => rng.choice([])).toThrow('empty');
  });

  it('never picks a zero weight and follows the weights', () => {
    const rng = createRng(5);
    const counts = [0, 0, 0];
    for (let i = 0; i < 10_000; i++) counts[rng.weighted([1, 0, 3])]++;
    expect(counts[1]).toBe(0);
    expect(counts[2] / counts[0]).toBeGreaterThan(2.6);
    expect(counts[2] / counts[0]).toBeLessThan(3.4);
  });

  it('hashes strings with FNV-1a', () => {
    // Published FNV-1a 32-bit test vectors.
    expect(hashString('')).toBe(0x811c9dc5);
    expect(hashString('a')).toBe(0xe40c292c);
    expect(hashString('foobar')).toBe(0xbf9cf968);
  });
});
