import type { Usage } from './types';

/** What the LM cache stores per key: the provider's answer, with the usage it cost when it was made. */
export interface CachedCompletion {
  outputs: string[];
  usage: Usage;
  responseModel: string | null;
  finishReasons: (string | null)[];
}

/**
 * The cache the LM consults under DSPy's cache key. Implementations must not throw for a sick tier: a get
 * that cannot answer returns undefined and a put that cannot store is dropped (the request still succeeds).
 */
export interface LMCache {
  get(key: string): Promise<CachedCompletion | undefined>;
  put(key: string, value: CachedCompletion): Promise<void>;
}

/** An in-process LRU bounded by entry count (DSPy's memory layer, `cachetools.LRUCache`). */
export class MemoryLMCache implements LMCache {
  private readonly entries = new Map<string, CachedCompletion>();

  constructor(readonly maxEntries = 10_000) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1)
      throw new RangeError('maxEntries must be a positive integer');
  }

  get size(): number {
    return this.entries.size;
  }

  async get(key: string): Promise<CachedCompletion | undefined> {
    const hit = this.entries.get(key);
    if (hit) {
      // Re-insert to mark as most recently used (Map keeps insertion order).
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }

  async put(key: string, value: CachedCompletion): Promise<void> {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.maxEntries) {
      this.entries.delete(this.entries.keys().next().value as string);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}
