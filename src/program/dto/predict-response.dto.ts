import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

const USAGE_EXAMPLE = {
  'openai/gpt-4o-mini': { prompt_tokens: 412, completion_tokens: 96, total_tokens: 508 },
};

export class PredictResponseDto {
  @ApiProperty({
    example: 'Photosynthesis is the process by which plants convert light into chemical energy.',
  })
  answer!: string;

  @ApiProperty({
    example: 'Plants capture light with chlorophyll and use it to make glucose from CO2 and water.',
  })
  reasoning!: string;

  @ApiProperty({ example: 'chlorophyll, glucose, light energy' })
  key_concepts!: string;

  @ApiProperty({ example: 'factual' })
  question_type!: string;

  @ApiProperty({
    description:
      "LM usage billed for this request, DSPy's {model: usage} shape; {} when served from the cache",
    example: USAGE_EXAMPLE,
  })
  usage!: Record<string, unknown>;

  @ApiProperty({
    description: 'Usage the cached answers in this response originally cost, not billed again; {} on a miss',
    example: {},
  })
  saved_usage!: Record<string, unknown>;

  @ApiProperty({ example: 1.234 })
  latency_seconds!: number;

  @ApiProperty({ description: 'True when every LM call was answered from the cache', example: false })
  cached!: boolean;

  @ApiProperty({ example: '5f0c6f0e-6a55-4d55-8f6e-3c7b7e0f4b0a', nullable: true })
  request_id!: string | null;

  // Always present (null when unknown), so required in the schema like every other field.
  @ApiProperty({
    description: 'Cost of the billed usage in USD; null when the model price is unknown',
    example: 0.00012,
    nullable: true,
  })
  cost_usd!: number | null;
}

export class BatchItemErrorDto {
  @ApiProperty({ example: 'lm_rate_limited' })
  code!: string;

  @ApiProperty({ example: 'The language model provider rate-limited the request; retry later.' })
  detail!: string;
}

export class BatchItemDto {
  @ApiProperty({ example: 'What is AI?' })
  question!: string;

  @ApiProperty({ nullable: true, type: String })
  answer!: string | null;

  @ApiPropertyOptional({ type: BatchItemErrorDto, nullable: true })
  error!: BatchItemErrorDto | null;
}

export class BatchResponseDto {
  @ApiProperty({
    type: [BatchItemDto],
    description:
      'One result per question, in input order; each item also carries the /predict fields when it succeeded',
  })
  results!: BatchItemDto[];

  @ApiProperty({ example: 2 })
  count!: number;
}
