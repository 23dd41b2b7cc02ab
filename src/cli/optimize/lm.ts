/** The LM of the commands, from the same environment variables as the service (src/config/lm.config.ts). */
import { LM, MemoryLMCache, type Usage } from '../../dspy';
import { localModelSpec } from '../../dspy/clients/local-provider';
import { lmConfig, type LmConfig } from '../../config/lm.config';
import { costOf, parsePrices } from '../../program/cost';
import { createLmProvider } from '../../program/lm-provider.factory';

export class CliConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliConfigError';
  }
}

/** Reads and validates DSPY_MODEL, OPENAI_API_KEY, OPENAI_BASE_URL, LM_* and LM_PRICES_JSON. */
export function readLmConfig(): LmConfig {
  let cfg: LmConfig;
  try {
    cfg = lmConfig();
  } catch (error) {
    throw new CliConfigError((error as Error).message);
  }
  if (!cfg.apiKey && !cfg.baseUrl && localModelSpec(cfg.model) === null) {
    throw new CliConfigError(
      'No language model is configured: set OPENAI_API_KEY (and optionally OPENAI_BASE_URL and DSPY_MODEL).',
    );
  }
  return cfg;
}

/** Prices the calls with the service's table (and LM_PRICES_JSON); null for a model without a price. */
export function priceFunction(cfg: LmConfig): (model: string, usage: Usage) => number | null {
  let prices: ReturnType<typeof parsePrices>;
  try {
    prices = parsePrices(cfg.pricesJson);
  } catch (error) {
    throw new CliConfigError((error as Error).message);
  }
  return (model, usage) => costOf({ [model]: usage }, prices);
}

/**
 * The LM over the openai SDK, with a fresh in-memory cache for the run: repeated evaluations of one prompt are
 * free, as with DSPy's cache, and two runs with the same answers make the same calls.
 */
export function createLm(cfg: LmConfig): LM {
  // DSPY_MODEL=local/…: the same in-process model the service can serve, loaded on first call.
  const provider = createLmProvider(cfg);
  return new LM(cfg.model, {
    provider,
    temperature: cfg.temperature,
    maxTokens: cfg.maxTokens,
    numRetries: cfg.maxRetries,
    supportsResponseSchema: cfg.supportsResponseSchema,
    cacheStore: new MemoryLMCache(100_000),
    historySize: 0,
  });
}
