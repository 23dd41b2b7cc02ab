import type { LM } from '../clients/lm';
import type { ChatMessage, LMStreamChunk } from '../clients/types';
import type { Field, Signature } from '../signatures/signature';
import { AdapterParseError, LMError } from '../utils/exceptions';
import { pyStrip } from '../utils/python';
import { formatFieldDescription, formatFieldValue, formatTaskDescription } from './format-utils';

export type Demo = Record<string, unknown> | { toDict(): Record<string, unknown> };

export interface AdapterCallOptions {
  signal?: AbortSignal;
  /** Streamed deltas of the LM calls, with the adapter that formatted the request (listeners parse by it). */
  onChunk?: (chunk: LMStreamChunk, adapter: string) => void;
}

export const INCOMPLETE_DEMO_PREFIX =
  'This is an example of the task, though some input or output fields are not supplied.';
export const MISSING_FIELD_MESSAGE = 'Not supplied for this particular example. ';

function demoDict(demo: Demo): Record<string, unknown> {
  return typeof (demo as { toDict?: unknown }).toDict === 'function'
    ? (demo as { toDict(): Record<string, unknown> }).toDict()
    : demo;
}

/**
 * DSPy `Adapter`: turns a signature, demos and inputs into chat messages, calls the LM, and parses each
 * completion back into output fields.
 */
export abstract class Adapter {
  abstract readonly name: string;

  abstract formatFieldStructure(signature: Signature): string;
  abstract userMessageOutputRequirements(signature: Signature): string;
  abstract formatAssistantMessageContent(
    signature: Signature,
    outputs: Record<string, unknown>,
    missingFieldMessage?: string,
  ): string;
  abstract parse(signature: Signature, completion: string): Record<string, unknown>;

  async call(
    lm: LM,
    lmKwargs: Record<string, unknown>,
    signature: Signature,
    demos: readonly Demo[],
    inputs: Record<string, unknown>,
    options: AdapterCallOptions = {},
  ): Promise<Record<string, unknown>[]> {
    return this.callOnce(lm, lmKwargs, signature, demos, inputs, options);
  }

  /** DSPy `Adapter.__call__` without fallbacks: format → LM → parse every generation. */
  protected async callOnce(
    lm: LM,
    lmKwargs: Record<string, unknown>,
    signature: Signature,
    demos: readonly Demo[],
    inputs: Record<string, unknown>,
    options: AdapterCallOptions,
  ): Promise<Record<string, unknown>[]> {
    const messages = this.format(signature, demos, inputs);
    const onChunk = options.onChunk;
    const response = await lm.call(messages, lmKwargs, {
      signal: options.signal,
      onChunk: onChunk && ((chunk) => onChunk(chunk, this.name)),
      accept: (outputs) => this.parseOutputs(signature, outputs),
    });
    return response.accepted as Record<string, unknown>[];
  }

  /** DSPy `_call_postprocess`: every generation parsed; none, or an empty one, is a parse failure (so a fallback). */
  protected parseOutputs(signature: Signature, outputs: string[]): Record<string, unknown>[] {
    const fail = (lmResponse: string, message: string) =>
      new AdapterParseError({
        adapterName: this.name,
        expectedFields: signature.outputFields.map((f) => f.name),
        lmResponse,
        message,
      });
    if (outputs.length === 0) throw fail('', 'LM returned no completions.');
    return outputs.map((text) => {
      if (!text) throw fail(String(text ?? ''), 'LM returned an empty or null response.');
      return this.parse(signature, text);
    });
  }

  /** DSPy `Adapter.format`: system, demo turns (incomplete first), then the main user message. */
  format(signature: Signature, demos: readonly Demo[], inputs: Record<string, unknown>): ChatMessage[] {
    return [
      { role: 'system', content: this.formatSystemMessage(signature) },
      ...this.formatDemos(signature, demos),
      { role: 'user', content: this.formatUserMessageContent(signature, inputs, '', '', true) },
    ];
  }

  formatSystemMessage(signature: Signature): string {
    return [
      formatFieldDescription(signature.inputFields, signature.outputFields),
      this.formatFieldStructure(signature),
      formatTaskDescription(signature.instructions),
    ].join('\n');
  }

  formatUserMessageContent(
    signature: Signature,
    inputs: Record<string, unknown>,
    prefix = '',
    suffix = '',
    mainRequest = false,
  ): string {
    const parts = [prefix];
    for (const field of signature.inputFields) {
      if (field.name in inputs)
        parts.push(`[[ ## ${field.name} ## ]]\n${formatFieldValue(field, inputs[field.name])}`);
    }
    if (mainRequest) parts.push(this.userMessageOutputRequirements(signature));
    parts.push(suffix);
    return pyStrip(parts.join('\n\n'));
  }

  /** DSPy `format_demos`: complete demos need every field non-null; a demo without inputs or outputs is dropped. */
  formatDemos(signature: Signature, demos: readonly Demo[]): ChatMessage[] {
    const complete: Record<string, unknown>[] = [];
    const incomplete: Record<string, unknown>[] = [];
    for (const raw of demos) {
      const demo = demoDict(raw);
      const isComplete = signature.fields.every(
        (f) => f.name in demo && demo[f.name] !== null && demo[f.name] !== undefined,
      );
      const hasInput = signature.inputFields.some((f) => f.name in demo);
      const hasOutput = signature.outputFields.some((f) => f.name in demo);
      if (isComplete) complete.push(demo);
      else if (hasInput && hasOutput) incomplete.push(demo);
    }
    const messages: ChatMessage[] = [];
    for (const demo of incomplete) {
      messages.push({
        role: 'user',
        content: this.formatUserMessageContent(signature, demo, INCOMPLETE_DEMO_PREFIX),
      });
      messages.push({
        role: 'assistant',
        content: this.formatAssistantMessageContent(signature, demo, MISSING_FIELD_MESSAGE),
      });
    }
    for (const demo of complete) {
      messages.push({ role: 'user', content: this.formatUserMessageContent(signature, demo) });
      messages.push({
        role: 'assistant',
        content: this.formatAssistantMessageContent(signature, demo, MISSING_FIELD_MESSAGE),
      });
    }
    return messages;
  }

  /** `outputs.get(k, missing_field_message)` over the output fields. */
  protected outputsWithMissing(
    signature: Signature,
    outputs: Record<string, unknown>,
    missing?: string,
  ): [Field, unknown][] {
    return signature.outputFields.map((f) => [f, f.name in outputs ? outputs[f.name] : (missing ?? null)]);
  }

  protected static isLMError(error: unknown): boolean {
    return error instanceof LMError;
  }
}
