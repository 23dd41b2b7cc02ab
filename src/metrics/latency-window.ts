/**
 * The last `capacity` latencies in a fixed ring, so quantiles cost O(capacity) memory however long the process
 * runs (the seed kept every latency in a list that only grew).
 */
export class LatencyWindow {
  private readonly values: Float64Array;
  private next = 0;
  private filled = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer');
    this.values = new Float64Array(capacity);
  }

  /** How many latencies the window holds now (never more than `capacity`). */
  get size(): number {
    return this.filled;
  }

  add(seconds: number): void {
    this.values[this.next] = seconds;
    this.next = (this.next + 1) % this.capacity;
    if (this.filled < this.capacity) this.filled += 1;
  }

  /**
   * Quantiles of the window by the seed's rule, `sorted[int(n * q)]` (clamped to the last element); 0 when empty.
   * One sort serves every requested quantile.
   */
  quantiles<const Q extends readonly number[]>(qs: Q): { [K in keyof Q]: number } {
    const n = this.filled;
    const sorted = this.values.slice(0, n).sort();
    return qs.map((q) => (n === 0 ? 0 : sorted[Math.min(Math.floor(n * q), n - 1)])) as {
      [K in keyof Q]: number;
    };
  }
}
