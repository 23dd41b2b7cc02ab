import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional, ApiResponse } from '@nestjs/swagger';

/** RFC 9457 problem details, as every error response of this API is shaped. */
export class ProblemDto {
  @ApiProperty({ example: 'https://errors.dspy-nest-api.dev/validation_failed' })
  type!: string;

  @ApiProperty({ example: 'Unprocessable Content' })
  title!: string;

  @ApiProperty({ example: 422 })
  status!: number;

  @ApiProperty({ example: 'question must be longer than or equal to 1 characters' })
  detail!: string;

  @ApiProperty({ example: 'validation_failed' })
  code!: string;

  @ApiProperty({ example: '5f0c6f0e-6a55-4d55-8f6e-3c7b7e0f4b0a', nullable: true })
  request_id!: string | null;

  @ApiPropertyOptional({ example: [{ field: 'question', message: 'question must be a string' }] })
  errors?: { field: string; message: string }[];
}

const MEANING: Record<number, string> = {
  400: 'The body is not valid JSON',
  401: 'Missing or wrong API key',
  404: 'Streaming is disabled (ENABLE_STREAMING=false)',
  413: 'The body is larger than the limit',
  415: 'The body is not application/json',
  422: 'The body failed validation, or the question does not fit the model context window',
  429: 'Rate-limited (by this service or by the upstream LM); see Retry-After',
  431: 'The request line is too long (a long question): send it with POST',
  500: 'Unexpected failure (details are in the log)',
  502: 'The upstream LM failed or its output could not be parsed',
  503: 'No LM configured, service saturated or draining; see Retry-After when present',
  504: 'The upstream LM timed out, or REQUEST_DEADLINE_MS passed',
};

/** Documents the problem+json responses a route can give. */
export function ApiProblemResponses(...statuses: number[]): MethodDecorator {
  return applyDecorators(
    ...statuses.map((status) =>
      ApiResponse({
        status,
        description: MEANING[status] ?? 'Error',
        content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/ProblemDto' } } },
      }),
    ),
  );
}
