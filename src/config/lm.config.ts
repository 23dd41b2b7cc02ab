import { registerAs } from '@nestjs/config';
import { DEFAULT_LOCAL_MODEL } from '../dspy/clients/local-provider';
import { readEnv } from './env';

/** The language model: DSPY_MODEL as the seed names it, plus the OpenAI-compatible endpoint and call limits. */
export const lmConfig = registerAs('lm', () => {
  const env = readEnv('lm');
  const apiKey = env.optionalString('OPENAI_API_KEY');
  const baseUrl = env.optionalString('OPENAI_BASE_URL');
  const explicitModel = env.optionalString('DSPY_MODEL');
  /** Per attempt, the whole exchange: a completion until its last byte, a stream until its headers. */
  const timeoutMs = env.int('LM_TIMEOUT_MS', 60_000, { min: 100 });
  return {
    // With no endpoint and no DSPY_MODEL, the embedded local model is the default.
    model: explicitModel ?? (apiKey || baseUrl ? 'openai/gpt-4o-mini' : DEFAULT_LOCAL_MODEL),
    /** True when the model is the built-in local default (nothing configured). */
    modelIsDefault: explicitModel === undefined && !apiKey && !baseUrl,
    apiKey,
    baseUrl,
    temperature: env.number('LM_TEMPERATURE', null, { min: 0, max: 2 }),
    maxTokens: env.number('LM_MAX_TOKENS', null, { min: 1 }),
    timeoutMs,
    /** TCP/TLS connect of a new upstream connection (undici's own default). */
    connectTimeoutMs: env.int('LM_CONNECT_TIMEOUT_MS', 10_000, { min: 100 }),
    /** Streams, per attempt: from sending the request to its first content chunk; past it the stream fails. */
    firstTokenTimeoutMs: env.int('LM_FIRST_TOKEN_TIMEOUT_MS', timeoutMs, { min: 100 }),
    /** Streams: the longest silence between chunks once content flows. */
    streamIdleTimeoutMs: env.int('LM_STREAM_IDLE_TIMEOUT_MS', timeoutMs, { min: 100 }),
    /**
     * One overall deadline per /predict, /predict/stream or /batch item: every SDK retry and adapter fallback call
     * included. The default leaves room for one full attempt and a retry, and stays under the 100 s many proxies
     * and CDNs give an origin.
     */
    requestDeadlineMs: env.int('REQUEST_DEADLINE_MS', 90_000, { min: 100 }),
    maxRetries: env.int('LM_MAX_RETRIES', 2, { min: 0, max: 10 }),
    /** Whether the endpoint accepts JSON-schema structured outputs (the JSON adapter's first fallback). */
    supportsResponseSchema: env.bool('LM_SUPPORTS_RESPONSE_SCHEMA', true),
    trackUsage: env.bool('TRACK_USAGE', true),
    /** Per-million-token prices as JSON: {"model": {"input": 0.15, "output": 0.6}}; merged over the defaults. */
    pricesJson: env.optionalString('LM_PRICES_JSON'),
    /** Local models (`DSPY_MODEL=local/…`): download directory, concurrency, context and string bounds. */
    modelsDir: env.string('MODELS_DIR', './models'),
    localDownload: env.bool('LOCAL_MODEL_DOWNLOAD', true),
    localSequences: env.int('LOCAL_SEQUENCES', 2, { min: 1, max: 64 }),
    localContextSize: env.int('LOCAL_CONTEXT_SIZE', 4096, { min: 256 }),
    /** 0 = cores − 1 (llama.cpp threads spin-wait: all cores on a busy host is very slow). */
    localThreads: env.int('LOCAL_THREADS', 0, { min: 0, max: 256 }),
    localMaxFieldChars: env.int('LOCAL_MAX_FIELD_CHARS', 600, { min: 1 }),
  };
});

export type LmConfig = ReturnType<typeof lmConfig>;
