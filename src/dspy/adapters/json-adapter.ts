import type { LM } from '../clients/lm';
import { StructuredOutputFormat } from '../clients/types';
import { isOpenEndedMapping, jsonSchemaOf, JsonSchema } from '../signatures/field-type';
import type { Signature } from '../signatures/signature';
import { LMError } from '../utils/exceptions';
import { pyJsonDumps } from '../utils/python';
import { Adapter, AdapterCallOptions, Demo } from './base-adapter';
import { outputSpec, toJsonable, translateFieldType, typeInfo } from './format-utils';
import { parseJsonCompletion } from './parse';

/** pydantic's default field title: `key_concepts` → `Key Concepts`. */
function fieldTitle(name: string): string {
  return name
    .split('_')
    .map((w) => (w ? w.charAt(0).toUpperCase() + w.slice(1).toLowerCase() : w))
    .join(' ');
}

/** Every object gets `required: [all properties]` and `additionalProperties: false`, recursively (DSPy's strictifying). */
function strictify(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strictify);
  if (!schema || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) out[k] = strictify(v);
  if (out.type === 'object' && out.properties && typeof out.properties === 'object') {
    out.required = Object.keys(out.properties);
    out.additionalProperties = false;
  }
  return out;
}

/**
 * DSPy `_get_structured_outputs_response_format`: a model `DSPyProgramOutputs` whose properties are the output
 * fields. Enums and models become `$defs` references, as pydantic emits them.
 */
export function structuredOutputsFormat(signature: Signature): StructuredOutputFormat {
  const properties: Record<string, unknown> = {};
  const defs: Record<string, unknown> = {};
  for (const f of signature.outputFields) {
    if (isOpenEndedMapping(f.type)) {
      throw new Error(
        `Field '${f.name}' has an open-ended mapping type which is not supported by Structured Outputs.`,
      );
    }
    let schema: JsonSchema = jsonSchemaOf(f.type);
    if (f.type.kind === 'enum' || f.type.kind === 'object') {
      defs[f.type.name] = strictify(schema);
      schema = { $ref: `#/$defs/${f.type.name}` };
      properties[f.name] = schema;
      continue;
    }
    properties[f.name] = { ...(strictify(schema) as JsonSchema), title: fieldTitle(f.name) };
  }
  const schema: JsonSchema = {
    ...(Object.keys(defs).length ? { $defs: defs } : {}),
    additionalProperties: false,
    properties,
    required: signature.outputFields.map((f) => f.name),
    title: 'DSPyProgramOutputs',
    type: 'object',
  };
  return new StructuredOutputFormat('DSPyProgramOutputs', schema);
}

/** DSPy `JSONAdapter`: outputs as one JSON object, with structured outputs when the endpoint supports them. */
export class JSONAdapter extends Adapter {
  readonly name: string = 'JSONAdapter';

  /**
   * DSPy `JSONAdapter.__call__`: structured outputs first; any non-LM failure — including a parse error of the
   * answer — calls the LM again in JSON-object mode (fixture errors/chat_and_json_parse_failure: 3 calls in all).
   */
  override async call(
    lm: LM,
    lmKwargs: Record<string, unknown>,
    signature: Signature,
    demos: readonly Demo[],
    inputs: Record<string, unknown>,
    options: AdapterCallOptions = {},
  ): Promise<Record<string, unknown>[]> {
    if (!lm.supportsResponseFormat)
      return this.callOnce(lm, { ...lmKwargs }, signature, demos, inputs, options);
    const openEnded = signature.outputFields.some((f) => isOpenEndedMapping(f.type));
    if (openEnded || !lm.supportsResponseSchema) {
      return this.callOnce(
        lm,
        { ...lmKwargs, response_format: { type: 'json_object' } },
        signature,
        demos,
        inputs,
        options,
      );
    }
    try {
      const format = structuredOutputsFormat(signature);
      return await this.callOnce(
        lm,
        { ...lmKwargs, response_format: format },
        signature,
        demos,
        inputs,
        options,
      );
    } catch (error) {
      if (error instanceof LMError || options.signal?.aborted) throw error;
      return this.callOnce(
        lm,
        { ...lmKwargs, response_format: { type: 'json_object' } },
        signature,
        demos,
        inputs,
        options,
      );
    }
  }

  formatFieldStructure(signature: Signature): string {
    const inputs = signature.inputFields
      .map((f) => `[[ ## ${f.name} ## ]]\n${translateFieldType(f)}`)
      .join('\n\n');
    const outputs = pyJsonDumps(
      Object.fromEntries(signature.outputFields.map((f) => [f.name, translateFieldType(f)])),
      2,
    );
    return [
      'All interactions will be structured in the following way, with the appropriate values filled in.',
      'Inputs will have the following structure:',
      inputs.trim(),
      'Outputs will be a JSON object with the following fields.',
      outputs,
    ]
      .join('\n\n')
      .trim();
  }

  userMessageOutputRequirements(signature: Signature): string {
    const fields = signature.outputFields.map((f) => `\`${f.name}\`${typeInfo(f)}`).join(', then ');
    return `Respond with a JSON object in the following order of fields: ${fields}.`;
  }

  formatAssistantMessageContent(
    signature: Signature,
    outputs: Record<string, unknown>,
    missing?: string,
  ): string {
    const d = Object.fromEntries(
      this.outputsWithMissing(signature, outputs, missing).map(([f, v]) => [f.name, toJsonable(v)]),
    );
    return pyJsonDumps(d, 2);
  }

  parse(signature: Signature, completion: string): Record<string, unknown> {
    return parseJsonCompletion(signature.outputFields.map(outputSpec), completion, this.name);
  }
}
