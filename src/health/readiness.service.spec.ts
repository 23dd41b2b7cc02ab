import { Logger } from '@nestjs/common';
import { ReadinessService } from './readiness.service';

describe('ReadinessService', () => {
  let readiness: ReadinessService;

  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    readiness = new ReadinessService();
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('starts in starting, not ready', () => {
    expect(readiness.state).toBe('starting');
    expect(readiness.isReady).toBe(false);
  });

  it('moves starting -> ready -> draining', () => {
    readiness.markReady();
    expect(readiness.state).toBe('ready');
    expect(readiness.isReady).toBe(true);
    readiness.markDraining();
    expect(readiness.state).toBe('draining');
    expect(readiness.isReady).toBe(false);
  });

  it('never becomes ready again once draining', () => {
    readiness.markDraining();
    readiness.markReady();
    expect(readiness.state).toBe('draining');
  });

  it('becomes ready on application bootstrap and drains on module destroy', () => {
    readiness.onApplicationBootstrap();
    expect(readiness.state).toBe('ready');
    readiness.onModuleDestroy();
    expect(readiness.state).toBe('draining');
  });
});
