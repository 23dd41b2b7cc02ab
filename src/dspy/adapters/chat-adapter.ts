import type { LM } from '../clients/lm';
import type { Signature } from '../signatures/signature';
import { LMError } from '../utils/exceptions';
import { pyStrip } from '../utils/python';
import { Adapter, AdapterCallOptions, Demo } from './base-adapter';
import { formatFieldValue, outputSpec, translateFieldType, typeInfo } from './format-utils';
import { JSONAdapter } from './json-adapter';
import { parseChatCompletion } from './parse';

export interface ChatAdapterOptions {
  /** DSPy `use_json_adapter_fallback` (default true): retry the whole call through JSONAdapter on a non-LM error. */
  useJsonAdapterFallback?: boolean;
}

/** DSPy `ChatAdapter`: `[[ ## field ## ]]` sections, ending with `[[ ## completed ## ]]`. */
export class ChatAdapter extends Adapter {
  readonly name: string = 'ChatAdapter';
  readonly useJsonAdapterFallback: boolean;

  constructor(options: ChatAdapterOptions = {}) {
    super();
    this.useJsonAdapterFallback = options.useJsonAdapterFallback ?? true;
  }

  /**
   * DSPy `ChatAdapter.__call__`: any failure that is not an LMError (parse errors, empty responses) reruns the
   * whole call through JSONAdapter — a second LM request (fixture errors/chat_parse_failure_json_fallback_succeeds).
   */
  override async call(
    lm: LM,
    lmKwargs: Record<string, unknown>,
    signature: Signature,
    demos: readonly Demo[],
    inputs: Record<string, unknown>,
    options: AdapterCallOptions = {},
  ): Promise<Record<string, unknown>[]> {
    try {
      return await this.callOnce(lm, { ...lmKwargs }, signature, demos, inputs, options);
    } catch (error) {
      if (error instanceof LMError || !this.useJsonAdapterFallback || options.signal?.aborted) throw error;
      return new JSONAdapter().call(lm, lmKwargs, signature, demos, inputs, options);
    }
  }

  formatFieldStructure(signature: Signature): string {
    const block = (fields: Signature['inputFields']) =>
      fields.map((f) => `[[ ## ${f.name} ## ]]\n${translateFieldType(f)}`).join('\n\n');
    const parts = [
      'All interactions will be structured in the following way, with the appropriate values filled in.',
      block(signature.inputFields),
      block(signature.outputFields),
      '[[ ## completed ## ]]\n',
    ];
    return pyStrip(parts.join('\n\n'));
  }

  userMessageOutputRequirements(signature: Signature): string {
    const fields = signature.outputFields
      .map((f) => `\`[[ ## ${f.name} ## ]]\`${typeInfo(f)}`)
      .join(', then ');
    return `Respond with the corresponding output fields, starting with the field ${fields}, and then ending with the marker for \`[[ ## completed ## ]]\`.`;
  }

  formatAssistantMessageContent(
    signature: Signature,
    outputs: Record<string, unknown>,
    missing?: string,
  ): string {
    const body = this.outputsWithMissing(signature, outputs, missing)
      .map(([f, v]) => `[[ ## ${f.name} ## ]]\n${formatFieldValue(f, v)}`)
      .join('\n\n');
    return `${pyStrip(body)}\n\n[[ ## completed ## ]]\n`;
  }

  parse(signature: Signature, completion: string): Record<string, unknown> {
    return parseChatCompletion(signature.outputFields.map(outputSpec), completion, this.name);
  }
}
