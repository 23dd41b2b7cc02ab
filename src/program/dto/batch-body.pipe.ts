import { Inject, Injectable, PipeTransform } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { BatchTooLargeError, RequestValidationError } from '../../common/errors/service-errors';
import {
  nestingErrors,
  shadowedKeyErrors,
  toFieldErrors,
  validationPipeOptions,
} from '../../common/pipes/validation.pipe';
import { programConfig } from '../../config/program.config';
import { PredictRequestDto } from './predict-request.dto';

/**
 * The /batch body: a non-empty JSON array of `{question}` of at most BATCH_MAX_ITEMS items. Every invalid item is
 * reported with its index (`[2].question`), and unknown fields are rejected as on /predict.
 */
@Injectable()
export class BatchBodyPipe implements PipeTransform<unknown, PredictRequestDto[]> {
  constructor(@Inject(programConfig.KEY) private readonly cfg: ConfigType<typeof programConfig>) {}

  transform(body: unknown): PredictRequestDto[] {
    if (!Array.isArray(body)) {
      throw new RequestValidationError([
        { field: '', message: 'the body must be a JSON array of {"question": string}' },
      ]);
    }
    if (body.length === 0)
      throw new RequestValidationError([{ field: '', message: 'the batch must not be empty' }]);
    if (body.length > this.cfg.batchMaxItems) throw new BatchTooLargeError(this.cfg.batchMaxItems);
    // Before plainToInstance, which recurses (see MAX_BODY_DEPTH) and drops some keys unseen.
    const tooDeep = nestingErrors(body);
    if (tooDeep.length) throw new RequestValidationError(tooDeep);
    const errors: { field: string; message: string }[] = [];
    const items = body.map((raw, i) => {
      if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
        errors.push({ field: `[${i}]`, message: `[${i}] must be an object {"question": string}` });
        return null;
      }
      const item = plainToInstance(PredictRequestDto, raw);
      errors.push(...toFieldErrors(validateSync(item, validationPipeOptions), `[${i}]`));
      errors.push(...shadowedKeyErrors(raw, PredictRequestDto, `[${i}]`));
      return item;
    });
    if (errors.length) throw new RequestValidationError(errors);
    return items as PredictRequestDto[];
  }
}
