import { HealthIndicatorService } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import { LM_CACHE } from './cache.constants';
import { CacheHealthIndicator } from './cache.health';

describe('CacheHealthIndicator', () => {
  const health = jest.fn();
  const stats = jest.fn();
  let indicator: CacheHealthIndicator;

  beforeEach(async () => {
    health.mockReset();
    stats.mockReset();
    stats.mockReturnValue({
      hits: 0,
      misses: 0,
      tiers: [
        { tier: 'memory', entries: 3, bytes: 300 },
        { tier: 'redis', entries: null, bytes: null },
      ],
    });
    const moduleRef = await Test.createTestingModule({
      providers: [
        CacheHealthIndicator,
        HealthIndicatorService,
        { provide: LM_CACHE, useValue: { health, stats } },
      ],
    }).compile();
    indicator = moduleRef.get(CacheHealthIndicator);
  });

  it('is up with every tier, its entries and bytes', async () => {
    health.mockResolvedValue({ memory: { status: 'up' }, redis: { status: 'up', latencyMs: 0.4 } });
    expect(await indicator.isHealthy()).toEqual({
      cache: {
        status: 'up',
        enabled: true,
        tiers: {
          memory: { status: 'up', entries: 3, bytes: 300 },
          redis: { status: 'up', latencyMs: 0.4, entries: null, bytes: null },
        },
      },
    });
  });

  it('is down, naming the tier, when Redis is unreachable', async () => {
    health.mockResolvedValue({ memory: { status: 'up' }, redis: { status: 'down', error: 'ECONNREFUSED' } });
    expect(await indicator.isHealthy()).toMatchObject({
      cache: { status: 'down', down: ['redis'], tiers: { redis: { status: 'down', error: 'ECONNREFUSED' } } },
    });
  });

  it('never throws: a failing or hanging probe is down', async () => {
    health.mockRejectedValue(new Error('boom'));
    expect(await indicator.isHealthy()).toEqual({ cache: { status: 'down', enabled: true, error: 'boom' } });
    health.mockReturnValue(new Promise(() => undefined));
    const started = Date.now();
    expect(await indicator.isHealthy()).toMatchObject({ cache: { status: 'down' } });
    expect(Date.now() - started).toBeLessThan(CacheHealthIndicator.TIMEOUT_MS + 500);
  });
});
