/** Shapes shared by every LM implementation, the cache and the usage tracker. */

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Token usage in DSPy's (litellm's) shape: numbers and nested `*_tokens_details` objects. */
export type Usage = { [key: string]: number | null | Usage | undefined };

/**
 * A structured-outputs response format (DSPy's pydantic model `DSPyProgramOutputs`). The cache key hashes its
 * schema (DSPy `_transform_value` → `model_json_schema()`); the wire form is OpenAI's `json_schema` format.
 */
export class StructuredOutputFormat {
  constructor(
    readonly name: string,
    readonly schema: Record<string, unknown>,
  ) {}
}

export type ResponseFormat = { type: 'json_object' } | { type: 'text' } | StructuredOutputFormat;

/** What an LM call returns to the adapter (DSPy `BaseLM._process_completion` outputs + metadata). */
export interface LMResponse {
  /** One text per choice (n generations). */
  outputs: string[];
  /** Provider usage for this call (`{}` when served from the cache, as DSPy does). */
  usage: Usage;
  /** Usage the cached response originally cost, reported separately on cache hits; null on misses. */
  savedUsage: Usage | null;
  /** The model name the provider reported (`response_model`). */
  responseModel: string | null;
  finishReasons: (string | null)[];
  cacheHit: boolean;
  /** What the caller's `accept` (the adapter's parse) returned for these outputs, when one was given. */
  accepted?: unknown;
}

/** One streamed delta from a provider. `usage` arrives on the final chunk when requested. */
export interface LMStreamChunk {
  /** Text delta of choice 0 ("" for chunks without text). */
  text: string;
  finishReason?: string | null;
  usage?: Usage | null;
  responseModel?: string | null;
}

/** A request as the provider receives it: DSPy's litellm kwargs minus litellm's own (cache, num_retries…). */
export interface LMRequest {
  /** The model name as configured (`openai/gpt-4o-mini`); providers strip the routing prefix themselves. */
  model: string;
  messages: ChatMessage[];
  /** Merged kwargs: temperature, max_tokens, response_format, n, … (nulls are dropped before the wire). */
  kwargs: Record<string, unknown>;
}

export interface LMCallOptions {
  signal?: AbortSignal;
}

/** The raw provider transport an LM drives. Implementations: OpenAI-compatible HTTP, local model, test stubs. */
export interface LMProvider {
  complete(request: LMRequest, options?: LMCallOptions): Promise<Omit<LMResponse, 'cacheHit' | 'savedUsage'>>;
  stream(request: LMRequest, options?: LMCallOptions): AsyncIterable<LMStreamChunk>;
}
