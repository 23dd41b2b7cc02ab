import { registerAs } from '@nestjs/config';
import { readEnv } from './env';

/** The language model: DSPY_MODEL as the seed names it, plus the OpenAI-compatible endpoint and call limits. */
export const lmConfig = registerAs('lm', () => {
  const env = readEnv('lm');
  return {
    model: env.string('DSPY_MODEL', 'openai/gpt-4o-mini'),
    apiKey: env.optionalString('OPENAI_API_KEY'),
    baseUrl: env.optionalString('OPENAI_BASE_URL'),
    temperature: env.number('LM_TEMPERATURE', null, { min: 0, max: 2 }),
    maxTokens: env.number('LM_MAX_TOKENS', null, { min: 1 }),
    timeoutMs: env.int('LM_TIMEOUT_MS', 60_000, { min: 100 }),
    maxRetries: env.int('LM_MAX_RETRIES', 2, { min: 0, max: 10 }),
    /** Whether the endpoint accepts JSON-schema structured outputs (the JSON adapter's first fallback). */
    supportsResponseSchema: env.bool('LM_SUPPORTS_RESPONSE_SCHEMA', true),
    trackUsage: env.bool('TRACK_USAGE', true),
    /** Per-million-token prices as JSON: {"model": {"input": 0.15, "output": 0.6}}; merged over the defaults. */
    pricesJson: env.optionalString('LM_PRICES_JSON'),
  };
});

export type LmConfig = ReturnType<typeof lmConfig>;
