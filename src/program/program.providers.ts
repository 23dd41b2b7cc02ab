import { Logger, Provider } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { LM, LMCache, OpenAIProvider } from '../dspy';
import { LM_CACHE } from '../cache/cache.constants';
import { lmConfig } from '../config/lm.config';
import { programConfig } from '../config/program.config';
import { MetricsService } from '../metrics/metrics.service';
import { QAProgram } from './qa.program';

/** DI tokens: the LM client and the loaded program sit behind tokens so tests can swap them. */
export const LM_CLIENT = Symbol('LM_CLIENT');
export const QA_PROGRAM = Symbol('QA_PROGRAM');

/** Whether an endpoint is configured at all; without one the service starts but predictions answer 503. */
export function lmProblem(cfg: ConfigType<typeof lmConfig>): string | null {
  if (cfg.apiKey || cfg.baseUrl) return null;
  return 'No language model is configured: set OPENAI_API_KEY (and optionally OPENAI_BASE_URL and DSPY_MODEL) and restart.';
}

export const lmClientProvider: Provider = {
  provide: LM_CLIENT,
  inject: [lmConfig.KEY, MetricsService, LM_CACHE],
  useFactory: (cfg: ConfigType<typeof lmConfig>, metrics: MetricsService, cache: LMCache | null): LM =>
    new LM(cfg.model, {
      // null (every tier off) disables caching; undefined would fall back to the runtime's default memory cache.
      cacheStore: cache ?? null,
      provider: new OpenAIProvider({
        apiKey: cfg.apiKey ?? (cfg.baseUrl ? 'not-needed' : undefined),
        baseURL: cfg.baseUrl,
        timeoutMs: cfg.timeoutMs,
        maxRetries: cfg.maxRetries,
      }),
      temperature: cfg.temperature,
      maxTokens: cfg.maxTokens,
      numRetries: cfg.maxRetries,
      supportsResponseSchema: cfg.supportsResponseSchema,
      // The service serves concurrent requests; per-LM history would only grow and mix them.
      historySize: 0,
      cacheOnlyAccepted: true,
      onCall: (e) => metrics.recordLmCall(e.model, e.outcome, e.seconds),
    }),
};

/** Builds the QA program and applies PROGRAM_STATE_PATH; a bad file fails the boot with its path and problem. */
export const qaProgramProvider: Provider = {
  provide: QA_PROGRAM,
  inject: [programConfig.KEY],
  useFactory: async (cfg: ConfigType<typeof programConfig>): Promise<QAProgram> => {
    const program = new QAProgram();
    const outputs = program.predict.predict.signature.outputFields.map((f) => f.name);
    const unknown = cfg.streamFields.filter((f) => !outputs.includes(f));
    if (unknown.length) {
      throw new Error(
        `Invalid configuration (program): STREAM_FIELDS names ${unknown.join(', ')}; the program's output fields are ${outputs.join(', ')}`,
      );
    }
    if (cfg.statePath) {
      await program.load(cfg.statePath);
      new Logger('Program').log(`loaded optimized state from ${cfg.statePath}`);
    }
    return program;
  },
};
