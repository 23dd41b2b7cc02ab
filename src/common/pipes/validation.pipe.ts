import { HttpStatus, ValidationPipe, type ValidationPipeOptions } from '@nestjs/common';
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

/** The global pipe: DTOs are validated and transformed; failures become one 422 problem listing every field. */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe(validationPipeOptions);
}
