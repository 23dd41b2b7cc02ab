import { OpenAIProvider } from '../dspy';
import type { LMProvider } from '../dspy';
import { LocalProvider, localModelSpec } from '../dspy/clients/local-provider';
import type { LmConfig } from '../config/lm.config';

/**
 * The upstream for DSPY_MODEL from the LM configuration, shared by the service and the commands: the in-process
 * node-llama-cpp model for `local/…`, otherwise any OpenAI-compatible endpoint over the openai SDK.
 */
export function createLmProvider(cfg: LmConfig, log?: (message: string) => void): LMProvider {
  const spec = localModelSpec(cfg.model);
  if (spec !== null) {
    return new LocalProvider({
      spec,
      modelsDir: cfg.modelsDir,
      download: cfg.localDownload,
      sequences: cfg.localSequences,
      contextSize: cfg.localContextSize,
      maxFieldChars: cfg.localMaxFieldChars,
      threads: cfg.localThreads || undefined,
      log,
    });
  }
  return new OpenAIProvider({
    apiKey: cfg.apiKey ?? (cfg.baseUrl ? 'not-needed' : undefined),
    baseURL: cfg.baseUrl,
    timeoutMs: cfg.timeoutMs,
    connectTimeoutMs: cfg.connectTimeoutMs,
    firstTokenTimeoutMs: cfg.firstTokenTimeoutMs,
    streamIdleTimeoutMs: cfg.streamIdleTimeoutMs,
    maxRetries: cfg.maxRetries,
  });
}
