import { Test } from '@nestjs/testing';
import { HealthIndicatorService } from '@nestjs/terminus';
import { PROGRAM_STATUS, type ProgramStatus } from '../../program/program-status';
import { LmHealthIndicator } from './lm.health';

describe('LmHealthIndicator', () => {
  const status = jest.fn<ProgramStatus, []>();
  let indicator: LmHealthIndicator;

  beforeEach(async () => {
    status.mockReset();
    const moduleRef = await Test.createTestingModule({
      providers: [
        LmHealthIndicator,
        HealthIndicatorService,
        { provide: PROGRAM_STATUS, useValue: { status } },
      ],
    }).compile();
    indicator = moduleRef.get(LmHealthIndicator);
  });

  const base = { model: 'openai/gpt-4o-mini', optimized: false, streaming: true };

  it('is up with the model when configured', () => {
    status.mockReturnValue({ ...base, lmConfigured: true, lmProblem: null });
    expect(indicator.isHealthy()).toEqual({
      lm: { status: 'up', model: 'openai/gpt-4o-mini', configured: true },
    });
  });

  it('is down with the problem when not configured', () => {
    status.mockReturnValue({ ...base, lmConfigured: false, lmProblem: 'set OPENAI_API_KEY' });
    expect(indicator.isHealthy()).toEqual({
      lm: { status: 'down', model: 'openai/gpt-4o-mini', configured: false, problem: 'set OPENAI_API_KEY' },
    });
  });

  it('never throws: a failing status source is down', () => {
    status.mockImplementation(() => {
      throw new Error('boom');
    });
    expect(indicator.isHealthy()).toEqual({ lm: { status: 'down', configured: false, problem: 'boom' } });
  });
});
