import { Logger, Provider } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { LM, LMCache, LMProvider } from '../dspy';
import { LocalProvider, localModelSpec } from '../dspy/clients/local-provider';
import { LM_CACHE } from '../cache/cache.constants';
import { lmConfig } from '../config/lm.config';
import { programConfig } from '../config/program.config';
import { MetricsService } from '../metrics/metrics.service';
import { createLmProvider } from './lm-provider.factory';
import { QAProgram } from './qa.program';
import { reliabilityConfig } from '../config/reliability.config';
import { CircuitBreakerProvider } from './resilient-provider';

/** DI tokens: the LM client and the loaded program sit behind tokens so tests can swap them. */
export const LM_CLIENT = Symbol('LM_CLIENT');
export const QA_PROGRAM = Symbol('QA_PROGRAM');

/** Whether an endpoint is configured at all; without one the service starts but predictions answer 503. */
export function lmProblem(cfg: ConfigType<typeof lmConfig>): string | null {
  if (localModelSpec(cfg.model) !== null) return localModelProblem(cfg);
  if (cfg.apiKey || cfg.baseUrl) return null;
  return 'No language model is configured: set OPENAI_API_KEY (and optionally OPENAI_BASE_URL and DSPY_MODEL) and restart.';
}

/** The local model this process serves (DSPY_MODEL=local/… or the default), for /health and lmProblem. */
let localModel: LocalProvider | null = null;
export function getLocalModel(): LocalProvider | null {
  return localModel;
}

/** A local model is configured once its file is on disk (the default may still be downloading) and loads. */
function localModelProblem(cfg: ConfigType<typeof lmConfig>): string | null {
  const status = localModel?.status();
  if (!status) return null;
  if (status.state === 'error') return `The local model ${cfg.model} is unavailable: ${status.error}`;
  if (!cfg.modelIsDefault || status.sizeBytes !== null) return null;
  return (
    `No language model is configured and the default local model is not available yet (${status.state}): ` +
    `place ${status.file} (MODELS_DIR), set DSPY_MODEL=local/<file.gguf>, or set OPENAI_API_KEY ` +
    `(and optionally OPENAI_BASE_URL and DSPY_MODEL) and restart.`
  );
}

/**
 * The upstream for DSPY_MODEL. A local model is remembered for /health and loaded (for the default, downloaded) in
 * the background, so startup never waits for it or fails on it.
 */
function createProvider(cfg: ConfigType<typeof lmConfig>): LMProvider {
  const logger = new Logger('LocalModel');
  const provider = createLmProvider(cfg, (m) => logger.log(m));
  if (!(provider instanceof LocalProvider)) return provider;
  localModel = provider;
  logger.log(
    `serving ${cfg.model} (${cfg.modelIsDefault ? 'default: no OPENAI_API_KEY, OPENAI_BASE_URL or DSPY_MODEL set' : 'DSPY_MODEL'})`,
  );
  provider
    .load()
    .catch((error: unknown) => logger.error(error instanceof Error ? error.message : String(error)));
  return provider;
}

export const lmClientProvider: Provider = {
  provide: LM_CLIENT,
  inject: [lmConfig.KEY, MetricsService, LM_CACHE, reliabilityConfig.KEY],
  useFactory: (
    cfg: ConfigType<typeof lmConfig>,
    metrics: MetricsService,
    cache: LMCache | null,
    reliability: ConfigType<typeof reliabilityConfig>,
  ): LM => {
    // One circuit breaker per upstream; it adds no retries (the SDK's are the only layer).
    const breaker = new CircuitBreakerProvider(createProvider(cfg), {
      failureThreshold: reliability.circuitFailureThreshold,
      openMs: reliability.circuitOpenMs,
    });
    metrics.reliability.watchCircuit(breaker);
    return new LM(cfg.model, {
      // null (every tier off) disables caching; undefined would fall back to the runtime's default memory cache.
      cacheStore: cache ?? null,
      provider: breaker,
      temperature: cfg.temperature,
      maxTokens: cfg.maxTokens,
      numRetries: cfg.maxRetries,
      supportsResponseSchema: cfg.supportsResponseSchema,
      // The service serves concurrent requests; per-LM history would only grow and mix them.
      historySize: 0,
      cacheOnlyAccepted: true,
      onCall: (e) => metrics.recordLmCall(e.model, e.outcome, e.seconds),
    });
  },
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
