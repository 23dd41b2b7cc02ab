import { BatchTooLargeError, RequestValidationError } from '../../common/errors/service-errors';
import { MAX_BODY_DEPTH } from '../../common/pipes/validation.pipe';
import { BatchBodyPipe } from './batch-body.pipe';
import { PredictRequestDto } from './predict-request.dto';

const pipe = new BatchBodyPipe({ batchMaxItems: 3 } as never);

function rejection(body: unknown): unknown {
  try {
    pipe.transform(body);
  } catch (error) {
    return error;
  }
  throw new Error('expected the pipe to reject');
}

describe('BatchBodyPipe', () => {
  it('turns a valid batch into DTO instances, in order', () => {
    const items = pipe.transform([{ question: 'a' }, { question: 'b' }]);
    expect(items).toEqual([{ question: 'a' }, { question: 'b' }]);
    expect(items[0]).toBeInstanceOf(PredictRequestDto);
  });

  it('refuses a batch over BATCH_MAX_ITEMS', () => {
    expect(
      rejection([{ question: 'a' }, { question: 'b' }, { question: 'c' }, { question: 'd' }]),
    ).toBeInstanceOf(BatchTooLargeError);
  });

  // Found by test/reliability/fuzz.e2e-spec.ts: plainToInstance skips these keys, so they passed unnoticed.
  it('names a __proto__ or constructor key of an item instead of dropping it', () => {
    const body = JSON.parse(
      '[{"question": "a"}, {"question": "b", "__proto__": {"x": 1}, "constructor": 1}]',
    );
    const error = rejection(body) as RequestValidationError;
    expect(error).toBeInstanceOf(RequestValidationError);
    expect(error.errors).toEqual([
      { field: '[1].__proto__', message: 'property __proto__ should not exist' },
      { field: '[1].constructor', message: 'property constructor should not exist' },
    ]);
  });

  // Found by the fuzz too: an item nested thousands of levels deep overflowed plainToInstance's recursion (500).
  it('refuses a body nested deeper than MAX_BODY_DEPTH with a validation error', () => {
    const body = JSON.parse(`[{"question": ${'['.repeat(20_000)}${']'.repeat(20_000)}}]`);
    const error = rejection(body) as RequestValidationError;
    expect(error).toBeInstanceOf(RequestValidationError);
    expect(error.errors).toEqual([
      { field: '', message: `the body nests deeper than ${MAX_BODY_DEPTH} levels` },
    ]);
  });
});
