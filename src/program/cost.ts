import type { Usage } from '../dspy';

/** USD per million tokens. */
export interface ModelPrice {
  input: number;
  output: number;
}

/** List prices of common OpenAI models (USD per 1M tokens); override or extend with LM_PRICES_JSON. */
export const DEFAULT_PRICES: Record<string, ModelPrice> = {
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4o': { input: 2.5, output: 10 },
  'gpt-4.1': { input: 2, output: 8 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6 },
  'gpt-4.1-nano': { input: 0.1, output: 0.4 },
  'gpt-5': { input: 1.25, output: 10 },
  'gpt-5-mini': { input: 0.25, output: 2 },
  'gpt-5-nano': { input: 0.05, output: 0.4 },
  'o3-mini': { input: 1.1, output: 4.4 },
  'o4-mini': { input: 1.1, output: 4.4 },
  'gpt-3.5-turbo': { input: 0.5, output: 1.5 },
};

/** Parse LM_PRICES_JSON (`{"model": {"input": 0.15, "output": 0.6}}`); the message names the variable. */
export function parsePrices(json: string | undefined): Record<string, ModelPrice> {
  if (!json) return { ...DEFAULT_PRICES };
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new Error('Invalid configuration: LM_PRICES_JSON must be a JSON object');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error('Invalid configuration: LM_PRICES_JSON must be a JSON object');
  }
  const out = { ...DEFAULT_PRICES };
  for (const [model, price] of Object.entries(parsed as Record<string, unknown>)) {
    const p = price as Partial<ModelPrice> | null;
    if (!p || typeof p.input !== 'number' || typeof p.output !== 'number' || p.input < 0 || p.output < 0) {
      throw new Error(
        `Invalid configuration: LM_PRICES_JSON["${model}"] must be {"input": number, "output": number}`,
      );
    }
    out[model] = { input: p.input, output: p.output };
  }
  return out;
}

/** The price of a model name as configured (`openai/gpt-4o-mini` → `gpt-4o-mini`, dated snapshots → base name). */
export function priceFor(model: string, prices: Record<string, ModelPrice>): ModelPrice | null {
  const name = model.includes('/') ? model.slice(model.indexOf('/') + 1) : model;
  if (prices[model]) return prices[model];
  if (prices[name]) return prices[name];
  const undated = name.replace(/-\d{4}-\d{2}-\d{2}$/, '');
  return prices[undated] ?? null;
}

/** Cost in USD of `{model: usage}`; null when any model with billed tokens has no known price. */
export function costOf(usage: Record<string, Usage>, prices: Record<string, ModelPrice>): number | null {
  let total = 0;
  for (const [model, u] of Object.entries(usage)) {
    const prompt = typeof u.prompt_tokens === 'number' ? u.prompt_tokens : 0;
    const completion = typeof u.completion_tokens === 'number' ? u.completion_tokens : 0;
    if (!prompt && !completion) continue;
    const price = priceFor(model, prices);
    if (!price) return null;
    total += (prompt * price.input + completion * price.output) / 1_000_000;
  }
  return Math.round(total * 1e8) / 1e8;
}
