import {
  HttpStatus,
  ValidationPipe,
  type ArgumentMetadata,
  type Type,
  type ValidationPipeOptions,
} from '@nestjs/common';
import type { ValidationError } from 'class-validator';
import { RequestValidationError, type FieldError } from '../errors/service-errors';

/** `items` + `2` → `items[2]`; `[2]` + `question` → `[2].question`; '' + `question` → `question`. */
function childPath(parent: string, property: string): string {
  if (/^\d+$/.test(property)) return `${parent}[${property}]`;
  return parent ? `${parent}.${property}` : property;
}

/**
 * class-validator's error tree as a flat list, one entry per broken constraint, each named by its path.
 * `parentPath` prefixes every field, e.g. `[2]` for the third item of a batch validated one item at a time.
 */
export function toFieldErrors(errors: ValidationError[], parentPath = ''): FieldError[] {
  return errors.flatMap((error) => {
    const field = childPath(parentPath, error.property);
    const own = Object.values(error.constraints ?? {}).map((message) => ({ field, message }));
    const nested = toFieldErrors(error.children ?? [], field);
    return own.length || nested.length ? [...own, ...nested] : [{ field, message: `${field} is invalid` }];
  });
}

export const validationPipeOptions: ValidationPipeOptions = {
  // A stray field (a typo like `questoin`) is reported by name instead of being dropped without a word.
  whitelist: true,
  forbidNonWhitelisted: true,
  transform: true,
  // Read only by Nest's default factory, so a pipe built from these options minus ours still answers 422;
  // ours raises a RequestValidationError, which the error table maps to the same 422.
  errorHttpStatusCode: HttpStatus.UNPROCESSABLE_ENTITY,
  exceptionFactory: (errors: ValidationError[]) => new RequestValidationError(toFieldErrors(errors)),
};

/**
 * How deep a request body may nest. A valid body is at most an array of objects of strings; Nest's proto-key
 * stripping and class-transformer both recurse, so a few thousand levels of `[[[…]]]` (a few KB that JSON.parse
 * takes fine) would overflow the stack there and answer 500.
 */
export const MAX_BODY_DEPTH = 32;

/** A 422 error when `value` nests deeper than MAX_BODY_DEPTH; walked without recursion, for the same reason. */
export function nestingErrors(value: unknown, path = ''): FieldError[] {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (typeof node !== 'object' || node === null) continue;
    if (depth >= MAX_BODY_DEPTH) {
      return [{ field: path, message: `${path || 'the body'} nests deeper than ${MAX_BODY_DEPTH} levels` }];
    }
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
  return [];
}

/**
 * Own keys that transformation drops before whitelisting could see them: `__proto__`, `constructor` and
 * `prototype` (Nest strips them as pollution hardening) and any name the DTO inherits, such as `toString`
 * (class-transformer skips a key whose target already has a function there). Without this,
 * `{"question": "…", "constructor": 1}` would pass as if the field were not there, breaking "unknown fields are
 * rejected". Only the top level: a DTO here has no nested objects.
 */
export function shadowedKeyErrors(value: unknown, metatype: Type<unknown>, path = ''): FieldError[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [];
  return Object.keys(value)
    .filter((key) => key === 'prototype' || key in (metatype.prototype as object))
    .map((key) => ({ field: childPath(path, key), message: `property ${key} should not exist` }));
}

/** Nest's ValidationPipe, plus the two checks above before it transforms anything. */
export class StrictValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const metatype = metadata.metatype;
    if (!metatype || !this.toValidate(metadata)) return super.transform(value, metadata);
    const tooDeep = nestingErrors(value);
    if (tooDeep.length) throw new RequestValidationError(tooDeep);
    const shadowed = shadowedKeyErrors(value, metatype);
    if (!shadowed.length) return super.transform(value, metadata);
    // Report them together with whatever else is wrong, as one 422.
    let others: FieldError[] = [];
    try {
      await super.transform(value, metadata);
    } catch (error) {
      if (!(error instanceof RequestValidationError)) throw error;
      others = error.errors;
    }
    throw new RequestValidationError([...others, ...shadowed]);
  }
}

/** The global pipe: DTOs are validated and transformed; failures become one 422 problem listing every field. */
export function createValidationPipe(): ValidationPipe {
  return new StrictValidationPipe(validationPipeOptions);
}
