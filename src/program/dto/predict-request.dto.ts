import { ApiProperty } from '@nestjs/swagger';
import { IsString, Length } from 'class-validator';

export class PredictRequestDto {
  @ApiProperty({
    description: 'The question to answer',
    minLength: 1,
    maxLength: 10_000,
    example: 'What is photosynthesis?',
  })
  @IsString()
  @Length(1, 10_000)
  question!: string;
}
