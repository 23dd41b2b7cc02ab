/**
 * Datasets for the optimize and evaluate commands: a JSON array of objects, or JSON Lines (one object per line).
 * Everything is checked before any LM call, and every problem names the file and the line or index.
 */
import { readFile } from 'node:fs/promises';
import { Example } from '../../dspy';

export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetError';
  }
}

export interface DatasetSpec {
  /** The program's input fields: each example needs every one as a non-empty string. */
  inputKeys: string[];
  /** Label fields the metric reads, with the metric's name for the message. */
  labelKeys?: string[];
  metricName?: string;
}

/** 1-based line and column of a character offset. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

function jsonErrorWhere(text: string, error: unknown): string {
  const message = (error as Error).message;
  const position = /at position (\d+)/.exec(message);
  if (position) {
    const { line, column } = lineColumn(text, Number(position[1]));
    return `line ${line}, column ${column}`;
  }
  if (/end of JSON input/i.test(message)) return `line ${text.split('\n').length} (unexpected end of input)`;
  return 'unknown position';
}

function check(file: string, where: string, value: unknown, spec: DatasetSpec): Example {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new DatasetError(
      `${file}: ${where}: expected a JSON object, found ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`,
    );
  }
  const record = value as Record<string, unknown>;
  for (const key of spec.inputKeys) {
    if (!(key in record)) {
      throw new DatasetError(
        `${file}: ${where}: missing the input field "${key}" (the program's inputs: ${spec.inputKeys.join(', ')})`,
      );
    }
    const value = record[key];
    if (typeof value !== 'string' || !value.trim()) {
      throw new DatasetError(`${file}: ${where}: the input field "${key}" must be a non-empty string`);
    }
  }
  for (const key of spec.labelKeys ?? []) {
    if (record[key] === undefined || record[key] === null) {
      const metric = spec.metricName ? `the ${spec.metricName} metric` : 'the metric';
      throw new DatasetError(
        `${file}: ${where}: missing the field "${key}", which ${metric} compares against`,
      );
    }
  }
  return new Example(record).withInputs(...spec.inputKeys);
}

/** Parse a dataset's text (exported for tests); `file` only names the source in messages. */
export function parseDataset(file: string, text: string, spec: DatasetSpec): Example[] {
  const body = text.replace(/^\uFEFF/, '');
  if (!body.trim()) throw new DatasetError(`${file}: the dataset is empty`);
  const examples: Example[] = [];
  if (body.trimStart().startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (error) {
      throw new DatasetError(
        `${file}: invalid JSON at ${jsonErrorWhere(body, error)}: ${(error as Error).message}`,
      );
    }
    (parsed as unknown[]).forEach((item, i) =>
      examples.push(check(file, `example at index ${i}`, item, spec)),
    );
  } else {
    const lines = body.split('\n');
    lines.forEach((raw, i) => {
      const line = raw.trim();
      if (!line) return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch (error) {
        throw new DatasetError(`${file}:${i + 1}: invalid JSON Lines record: ${(error as Error).message}`);
      }
      examples.push(check(file, `line ${i + 1}`, parsed, spec));
    });
  }
  if (examples.length === 0) throw new DatasetError(`${file}: the dataset has no examples`);
  return examples;
}

export async function loadDataset(file: string, spec: DatasetSpec): Promise<Example[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (error as Error).message;
    throw new DatasetError(`${file}: cannot read the dataset: ${why}`);
  }
  return parseDataset(file, text, spec);
}
