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

  add(model: string, usage: Usage | null | undefined): void {
    if (!usage || Object.keys(usage).length === 0) return;
    this.byModel.set(model, mergeUsage(this.byModel.get(model), usage));
  }

  /** `{model: merged usage}`; `{}` when every call was served from the cache. */
  totals(): Record<string, Usage> {
    return Object.fromEntries(this.byModel);
  }
}
