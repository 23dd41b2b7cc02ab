/**
 * The LM response cache (`LMCache`, concretely a `TieredLMCache`), or null when every tier is disabled. Hand it to
 * the runtime as `new LM(model, { cacheStore })`.
 */
export const LM_CACHE = Symbol('LM_CACHE');

/** The configured tiers (memory → disk → Redis), shared by `LM_CACHE` and cache-manager's `CACHE_MANAGER`. */
export const LM_CACHE_TIERS = Symbol('LM_CACHE_TIERS');
