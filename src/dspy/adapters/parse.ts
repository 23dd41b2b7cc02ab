/**
 * `ChatAdapter.parse` and `JSONAdapter.parse` of DSPy 3.3.1: from the LM's completion text to the output dict.
 */
import { admitsNone, FieldType } from '../signatures/field-type';
import { AdapterParseError } from '../utils/exceptions';
import { pySplitlines, pyStrip } from '../utils/python';
import { dictEntries, findFirstJsonObject, isPyDict, jsonRepairLoads, setOwn } from '../utils/python-literal';
import { parseValue } from './parse-value';

/** One output field of the signature, in signature order. */
export interface OutputFieldSpec {
  name: string;
  type: FieldType;
  default?: unknown;
  hasDefault?: boolean;
}

/** `\[\[ ## (\w+) ## \]\]` matched at the start (Python `\w` is Unicode letters, digits and `_`). */
const FIELD_HEADER = /^\[\[ ## ([\p{L}\p{N}_]+) ## \]\]/u;

/** Python `str(exception)`. */
function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * DSPy `ChatAdapter.parse`: split the completion into `[[ ## name ## ]]` sections, parse the first section of
 * every output field, fill defaults, and insist on the full set of output fields.
 */
export function parseChatCompletion(
  outputs: OutputFieldSpec[],
  completion: string,
  adapterName = 'ChatAdapter',
): Record<string, unknown> {
  const sections: [string | null, string[]][] = [[null, []]];
  for (const line of pySplitlines(completion)) {
    const match = FIELD_HEADER.exec(pyStrip(line));
    if (match) {
      // QUIRK: the match end is measured on the stripped line but slices the unstripped one, so an indented
      // header leaks its tail ("]]") into the value (fixture qa_indented_header_quirk). Python counts code points.
      const end = Array.from(match[0]).length;
      const rest = pyStrip(Array.from(line).slice(end).join(''));
      sections.push([match[1], rest ? [rest] : []]);
    } else {
      sections[sections.length - 1][1].push(line);
    }
  }

  const specs = new Map(outputs.map((o) => [o.name, o]));
  const fields: Record<string, unknown> = {};
  for (const [name, lines] of sections) {
    // The first occurrence of a field wins; the preamble, unknown headers and `completed` are ignored.
    if (name === null || !specs.has(name) || Object.hasOwn(fields, name)) continue;
    const value = pyStrip(lines.join('\n'));
    try {
      setOwn(fields, name, parseValue(value, specs.get(name)!.type));
    } catch (error) {
      throw new AdapterParseError({
        adapterName,
        expectedFields: outputs.map((o) => o.name),
        lmResponse: completion,
        message: `Failed to parse field ${name} with value ${value} from the LM response. Error message: ${errorText(error)}`,
      });
    }
  }
  return completeOutputs(outputs, fields, adapterName, completion);
}

/**
 * DSPy `JSONAdapter.parse`: json_repair the completion (or its first balanced `{…}`), keep the output keys and
 * parse each value. A per-field error escapes unwrapped (fixture typed_bad_int_not_wrapped).
 */
export function parseJsonCompletion(
  outputs: OutputFieldSpec[],
  completion: string,
  adapterName = 'JSONAdapter',
): Record<string, unknown> {
  let lmResponse = completion;
  let loaded = jsonRepairLoads(lmResponse);
  if (!isPyDict(loaded)) {
    const candidate = findFirstJsonObject(lmResponse);
    if (candidate !== null) {
      // DSPy rebinds `completion` here, so later errors quote only the extracted object.
      lmResponse = candidate;
      loaded = jsonRepairLoads(lmResponse);
    }
  }
  if (!isPyDict(loaded)) {
    throw new AdapterParseError({
      adapterName,
      expectedFields: outputs.map((o) => o.name),
      lmResponse,
      message: 'LM response cannot be serialized to a JSON object.',
    });
  }

  const specs = new Map(outputs.map((o) => [o.name, o]));
  const fields: Record<string, unknown> = {};
  for (const [key, value] of dictEntries(loaded)) {
    if (typeof key !== 'string' || !specs.has(key)) continue;
    setOwn(fields, key, parseValue(value, specs.get(key)!.type));
  }
  return completeOutputs(outputs, fields, adapterName, lmResponse);
}

/**
 * `apply_output_field_defaults` and the key-set check: a missing field takes its default, or None when its
 * annotation admits None; the result is in signature order; any field still missing is an AdapterParseError.
 */
function completeOutputs(
  outputs: OutputFieldSpec[],
  fields: Record<string, unknown>,
  adapterName: string,
  lmResponse: string,
): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const o of outputs) {
    const hasDefault = o.hasDefault ?? ('default' in o && o.default !== undefined);
    if (Object.hasOwn(fields, o.name)) setOwn(result, o.name, fields[o.name]);
    else if (hasDefault) setOwn(result, o.name, o.default);
    else if (admitsNone(o.type)) setOwn(result, o.name, null);
  }
  if (outputs.some((o) => !Object.hasOwn(result, o.name))) {
    throw new AdapterParseError({
      adapterName,
      expectedFields: outputs.map((o) => o.name),
      lmResponse,
      parsedResult: result,
    });
  }
  return result;
}
