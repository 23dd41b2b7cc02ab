import { ValidationPipe, type ArgumentMetadata } from '@nestjs/common';
import { Type } from 'class-transformer';
import { IsInt, IsString, Length, ValidateNested, validate } from 'class-validator';
import { RequestValidationError } from '../errors/service-errors';
import { createValidationPipe, MAX_BODY_DEPTH, nestingErrors, toFieldErrors } from './validation.pipe';

class QuestionDto {
  @IsString()
  @Length(1, 10)
  question!: string;
}

class BatchDto {
  @ValidateNested({ each: true })
  @Type(() => QuestionDto)
  items!: QuestionDto[];
}

class PagingDto {
  @Type(() => Number)
  @IsInt()
  limit!: number;
}

const body = (metatype: ArgumentMetadata['metatype']): ArgumentMetadata => ({
  type: 'body',
  metatype,
  data: '',
});

async function rejection(pipe: ValidationPipe, value: unknown, metatype: ArgumentMetadata['metatype']) {
  try {
    await pipe.transform(value, body(metatype));
  } catch (error) {
    return error;
  }
  throw new Error('expected the pipe to reject');
}

describe('createValidationPipe', () => {
  const pipe = createValidationPipe();

  it('is a Nest ValidationPipe', () => {
    expect(pipe).toBeInstanceOf(ValidationPipe);
  });

  it('passes a valid body through as an instance of the DTO', async () => {
    const result = await pipe.transform({ question: 'Why?' }, body(QuestionDto));
    expect(result).toBeInstanceOf(QuestionDto);
    expect(result).toEqual({ question: 'Why?' });
  });

  it('transforms values to the declared types', async () => {
    const result = await pipe.transform({ limit: '5' }, body(PagingDto));
    expect(result.limit).toBe(5);
  });

  it('rejects an invalid body with a RequestValidationError listing each field', async () => {
    const error = await rejection(pipe, { question: '' }, QuestionDto);
    expect(error).toBeInstanceOf(RequestValidationError);
    expect((error as RequestValidationError).errors).toEqual([
      { field: 'question', message: 'question must be longer than or equal to 1 characters' },
    ]);
  });

  it('reports every broken constraint of a field', async () => {
    const error = (await rejection(pipe, {}, QuestionDto)) as RequestValidationError;
    expect(error.errors.map((e) => e.field)).toEqual(['question', 'question']);
    expect(error.errors.map((e) => e.message)).toEqual(
      expect.arrayContaining([
        'question must be a string',
        'question must be longer than or equal to 1 characters',
      ]),
    );
  });

  it('rejects unknown properties by name instead of dropping them', async () => {
    const error = (await rejection(
      pipe,
      { question: 'ok', questoin: 'typo' },
      QuestionDto,
    )) as RequestValidationError;
    expect(error.errors).toEqual([{ field: 'questoin', message: 'property questoin should not exist' }]);
  });

  // Found by test/reliability/fuzz.e2e-spec.ts: Nest strips these keys and class-transformer skips inherited
  // names, so the whitelist never saw them and `{"question": "…", "constructor": 1}` passed.
  it.each(['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'])(
    'rejects a %s key by name instead of dropping it',
    async (key) => {
      const value = JSON.parse(`{"question": "ok", ${JSON.stringify(key)}: {"polluted": true}}`);
      const error = (await rejection(pipe, value, QuestionDto)) as RequestValidationError;
      expect(error).toBeInstanceOf(RequestValidationError);
      expect(error.errors).toEqual([{ field: key, message: `property ${key} should not exist` }]);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    },
  );

  it('reports such a key together with the other problems of the body', async () => {
    const error = (await rejection(
      pipe,
      JSON.parse('{"__proto__": {"question": "ok"}}'),
      QuestionDto,
    )) as RequestValidationError;
    expect(error.errors.map((e) => e.field)).toEqual(['question', 'question', '__proto__']);
  });

  // Found by the fuzz too: a few KB of `[[[…]]]` overflowed the stack in the pipe's recursion and answered 500.
  it('rejects a body nested deeper than MAX_BODY_DEPTH with a 422 error, however deep', async () => {
    for (const text of [
      `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
      `{"question":"ok","x":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`,
    ]) {
      const error = (await rejection(pipe, JSON.parse(text), QuestionDto)) as RequestValidationError;
      expect(error).toBeInstanceOf(RequestValidationError);
      expect(error.errors).toEqual([
        { field: '', message: `the body nests deeper than ${MAX_BODY_DEPTH} levels` },
      ]);
    }
  });

  it('names nested array items by index', async () => {
    const error = (await rejection(
      pipe,
      { items: [{ question: 'ok' }, { question: 'ok' }, { question: 42 }] },
      BatchDto,
    )) as RequestValidationError;
    expect(error.errors).toHaveLength(2);
    expect(error.errors).toEqual(
      expect.arrayContaining([
        { field: 'items[2].question', message: 'question must be a string' },
        {
          field: 'items[2].question',
          message: 'question must be longer than or equal to 1 and shorter than or equal to 10 characters',
        },
      ]),
    );
  });
});

describe('nestingErrors', () => {
  const nested = (depth: number): unknown => {
    let value: unknown = 'leaf';
    for (let i = 0; i < depth; i++) value = [value];
    return value;
  };

  it('allows MAX_BODY_DEPTH levels of containers and refuses one more, naming the path', () => {
    expect(nestingErrors(nested(MAX_BODY_DEPTH))).toEqual([]);
    expect(nestingErrors(nested(MAX_BODY_DEPTH + 1), '[3]')).toEqual([
      { field: '[3]', message: `[3] nests deeper than ${MAX_BODY_DEPTH} levels` },
    ]);
  });

  it('has nothing to say about scalars and flat bodies', () => {
    expect(nestingErrors(undefined)).toEqual([]);
    expect(nestingErrors('text')).toEqual([]);
    expect(nestingErrors([{ question: 'a' }, { question: 'b' }])).toEqual([]);
  });
});

describe('toFieldErrors', () => {
  it('prefixes fields with the given path, e.g. one batch item', async () => {
    const dto = Object.assign(new QuestionDto(), { question: 'x'.repeat(11) });
    expect(toFieldErrors(await validate(dto), '[2]')).toEqual([
      { field: '[2].question', message: 'question must be shorter than or equal to 10 characters' },
    ]);
  });

  it('writes a numeric top-level property as an index', () => {
    const errors = [
      {
        property: '2',
        children: [{ property: 'question', constraints: { isString: 'question must be a string' } }],
      },
    ];
    expect(toFieldErrors(errors)).toEqual([{ field: '[2].question', message: 'question must be a string' }]);
  });

  it('still names a field that failed without a message', () => {
    expect(toFieldErrors([{ property: 'question', children: [] }])).toEqual([
      { field: 'question', message: 'question is invalid' },
    ]);
  });
});
