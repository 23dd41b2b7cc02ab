/**
 * Budget and concurrency for an optimization run (not in DSPy): every upstream LM request of the run goes
 * through one meter, which counts calls and tokens, prices them, refuses a call past a limit, and shares one
 * concurrency limiter between evaluation and proposal. Cache hits never reach the provider, so they are free,
 * as in DSPy.
 */
import type { LM } from '../clients/lm';
import type { LMCallOptions, LMProvider, LMRequest, LMStreamChunk, Usage } from '../clients/types';
import {
  ContextWindowExceededError,
  LMAbortedError,
  LMAuthError,
  LMBillingError,
  LMConfigurationError,
  LMError,
  LMUnsupportedModelError,
  isRetryableLMError,
} from '../utils/exceptions';
import { ConcurrencyLimiter } from './concurrency';

export interface BudgetLimits {
  /** Upstream LM requests (cache hits excluded). */
  maxLmCalls?: number;
  /** US dollars, from the provider's token counts and `priceOf`. */
  maxUsd?: number;
}

/** USD for one call's usage, or null when the model's price is unknown. */
export type PriceFn = (model: string, usage: Usage) => number | null;

/** A call was refused because a budget limit is reached. An LMError, so adapters do not retry it. */
export class BudgetExceededError extends LMError {
  static override readonly defaultCode: string = 'budget_exceeded';
  constructor(
    message: string,
    readonly limit: 'lmCalls' | 'usd',
    model: string | null = null,
  ) {
    super(message, { model });
  }
}

export type LMRole = 'prompt' | 'task';

export interface UsageSnapshot {
  /** Upstream requests started (including failed ones). */
  lmCalls: number;
  promptLmCalls: number;
  taskLmCalls: number;
  failedLmCalls: number;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Null when no price function was given or a model had no known price. */
  usd: number | null;
}

export interface LMUsageMeterOptions {
  limits?: BudgetLimits;
  /** A shared limiter, or the number of concurrent upstream requests (default 8, DSPy's num_threads). */
  concurrency?: number | ConcurrencyLimiter;
  priceOf?: PriceFn;
}

function tokens(usage: Usage, key: string): number {
  const v = usage[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

export class LMUsageMeter {
  readonly limits: BudgetLimits;
  readonly limiter: ConcurrencyLimiter;
  private readonly priceOf: PriceFn | undefined;
  private calls = { prompt: 0, task: 0, failed: 0 };
  private tokens = { prompt: 0, completion: 0, total: 0 };
  private usd = 0;
  private usdKnown: boolean;

  constructor(options: LMUsageMeterOptions = {}) {
    this.limits = { ...options.limits };
    for (const [k, v] of Object.entries(this.limits)) {
      if (v !== undefined && !(typeof v === 'number' && v >= 0)) throw new RangeError(`${k} must be >= 0`);
    }
    if (this.limits.maxUsd !== undefined && !options.priceOf) {
      throw new LMConfigurationError('a maxUsd budget needs a priceOf function to price the calls');
    }
    const c = options.concurrency ?? 8;
    this.limiter = c instanceof ConcurrencyLimiter ? c : new ConcurrencyLimiter(c);
    this.priceOf = options.priceOf;
    this.usdKnown = !!options.priceOf;
  }

  /** A copy of `lm` whose upstream requests go through this meter (its cache and settings are kept). */
  wrap(lm: LM, role: LMRole): LM {
    return lm.copy({ provider: this.provider(lm.provider, role, lm.model) });
  }

  /** The limit that is reached, if any. */
  exhausted(): 'lmCalls' | 'usd' | null {
    const { maxLmCalls, maxUsd } = this.limits;
    if (maxLmCalls !== undefined && this.calls.prompt + this.calls.task >= maxLmCalls) return 'lmCalls';
    if (maxUsd !== undefined && this.usd >= maxUsd) return 'usd';
    return null;
  }

  snapshot(): UsageSnapshot {
    return {
      lmCalls: this.calls.prompt + this.calls.task,
      promptLmCalls: this.calls.prompt,
      taskLmCalls: this.calls.task,
      failedLmCalls: this.calls.failed,
      promptTokens: this.tokens.prompt,
      completionTokens: this.tokens.completion,
      totalTokens: this.tokens.total,
      usd: this.usdKnown ? Math.round(this.usd * 1e8) / 1e8 : null,
    };
  }

  private reserve(role: LMRole, model: string): void {
    const hit = this.exhausted();
    if (hit === 'lmCalls') {
      throw new BudgetExceededError(
        `LM call budget exhausted: ${this.limits.maxLmCalls} calls made`,
        'lmCalls',
        model,
      );
    }
    if (hit === 'usd') {
      throw new BudgetExceededError(
        `LM cost budget exhausted: $${this.usd.toFixed(4)} spent of $${this.limits.maxUsd}`,
        'usd',
        model,
      );
    }
    this.calls[role]++;
  }

  private charge(model: string, usage: Usage | null | undefined): void {
    if (!usage) return;
    const prompt = tokens(usage, 'prompt_tokens');
    const completion = tokens(usage, 'completion_tokens');
    this.tokens.prompt += prompt;
    this.tokens.completion += completion;
    this.tokens.total += tokens(usage, 'total_tokens') || prompt + completion;
    if (this.priceOf && (prompt || completion)) {
      const price = this.priceOf(model, usage);
      if (price === null) {
        this.usdKnown = false;
        if (this.limits.maxUsd !== undefined)
          throw new LMConfigurationError(
            `no price is known for ${model}, so the maxUsd budget cannot be kept`,
          );
      } else this.usd += price;
    }
  }

  /** A provider that meters and limits `inner`. */
  provider(inner: LMProvider | undefined, role: LMRole, model: string): LMProvider {
    const need = (): LMProvider => {
      if (!inner) throw new LMConfigurationError('this LM has no provider configured', { model });
      return inner;
    };
    return {
      complete: (request: LMRequest, options?: LMCallOptions) =>
        this.limiter.run(async () => {
          const p = need();
          this.reserve(role, request.model);
          try {
            const response = await p.complete(request, options);
            this.charge(request.model, response.usage);
            return response;
          } catch (error) {
            this.calls.failed++;
            throw error;
          }
        }),
      // Buffered: the optimizers never stream, and a stream must hold its limiter slot until it ends.
      stream: (request: LMRequest, options?: LMCallOptions): AsyncIterable<LMStreamChunk> => {
        const collect = () =>
          this.limiter.run(async () => {
            const p = need();
            this.reserve(role, request.model);
            const out: LMStreamChunk[] = [];
            try {
              for await (const chunk of p.stream(request, options)) {
                out.push(chunk);
                if (chunk.usage) this.charge(request.model, chunk.usage);
              }
            } catch (error) {
              this.calls.failed++;
              throw error;
            }
            return out;
          });
        return {
          async *[Symbol.asyncIterator]() {
            yield* await collect();
          },
        };
      },
    };
  }
}

/**
 * Errors that end a run instead of scoring one example 0: the budget, a cancellation, and LM failures that
 * outlived the provider's retries or will fail every call (outage, rate limit, auth, billing, bad model, no
 * configuration). DSPy would score each such example 0 and carry on; an optimizer fed zeros from an outage
 * picks at random, so we stop with the best fully evaluated program instead.
 */
export function isRunEndingError(error: unknown): boolean {
  if (error instanceof BudgetExceededError || error instanceof LMAbortedError) return true;
  if (error instanceof ContextWindowExceededError) return false;
  return (
    isRetryableLMError(error) ||
    error instanceof LMAuthError ||
    error instanceof LMBillingError ||
    error instanceof LMConfigurationError ||
    error instanceof LMUnsupportedModelError
  );
}
