import type { Usage } from '../clients/types';

/**
 * DSPy `utils/usage_tracker.py`: sums usage per model key by key (None counts as 0 against a number, nested
 * dicts merge recursively, both-None stays None). An empty usage (a cache hit) adds nothing.
 */
export function mergeUsage(a: Usage | undefined, b: Usage): Usage {
  const out: Usage = { ...(a ?? {}) };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    if (v !== null && typeof v === 'object') {
      out[k] = mergeUsage(prev !== null && typeof prev === 'object' ? prev : undefined, v);
    } else if (typeof v === 'number' || typeof prev === 'number') {
      out[k] = (typeof prev === 'number' ? prev : 0) + (typeof v === 'number' ? v : 0);
    } else if (!(k in out)) {
      out[k] = v ?? null;
    }
  }
  return out;
}

export class UsageTracker {
  private readonly byModel = new Map<string, Usage>();
  private readonly savedByModel = new Map<string, Usage>();
  /** LM calls made under this tracker, and how many of them the cache answered. */
  calls = 0;
  cacheHits = 0;

  /** Count one LM call; a cache hit also records the usage the cached answer originally cost. */
  recordCall(model: string, cacheHit: boolean, savedUsage: Usage | null): void {
    this.calls++;
    if (cacheHit) {
      this.cacheHits++;
      if (savedUsage && Object.keys(savedUsage).length) {
        this.savedByModel.set(model, mergeUsage(this.savedByModel.get(model), savedUsage));
      }
    }
  }

  /** `{model: usage}` that cache hits saved (not billed); `{}` when nothing came from the cache. */
  saved(): Record<string, Usage> {
    return Object.fromEntries(this.savedByModel);
  }

  add(model: string, usage: Usage | null | undefined): void {
    if (!usage || Object.keys(usage).length === 0) return;
    this.byModel.set(model, mergeUsage(this.byModel.get(model), usage));
  }

  /** `{model: merged usage}`; `{}` when every call was served from the cache. */
  totals(): Record<string, Usage> {
    return Object.fromEntries(this.byModel);
  }
}
