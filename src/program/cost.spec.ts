import { costOf, parsePrices, priceFor } from './cost';

describe('cost', () => {
  const prices = parsePrices(undefined);

  it('prices gpt-4o-mini usage per million tokens', () => {
    expect(
      costOf({ 'openai/gpt-4o-mini': { prompt_tokens: 1_000_000, completion_tokens: 500_000 } }, prices),
    ).toBe(0.45);
  });

  it('is 0 for an all-cached call and null for an unknown model with tokens', () => {
    expect(costOf({}, prices)).toBe(0);
    expect(costOf({ 'openai/mystery': { prompt_tokens: 10, completion_tokens: 1 } }, prices)).toBeNull();
  });

  it('maps dated snapshots to their base price and accepts overrides', () => {
    expect(priceFor('openai/gpt-4o-2024-08-06', prices)).toEqual({ input: 2.5, output: 10 });
    expect(priceFor('openai/mine', parsePrices('{"mine": {"input": 1, "output": 2}}'))).toEqual({
      input: 1,
      output: 2,
    });
    expect(() => parsePrices('{"x": {"input": "a"}}')).toThrow(/LM_PRICES_JSON\["x"\]/);
  });
});
