import { Global, type INestApplication, Module, ServiceUnavailableException } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import type { App } from 'supertest/types';
import { PROGRAM_STATUS, type ProgramStatus, type ProgramStatusProvider } from '../program/program-status';
import { HealthController } from './health.controller';
import { CacheHealthIndicator } from '../cache/cache.health';
import { HealthModule } from './health.module';
import { readPackageVersion } from './health.service';
import { ReadinessService } from './readiness.service';

const CONFIGURED: ProgramStatus = {
  model: 'openai/gpt-4o-mini',
  optimized: true,
  streaming: false,
  lmConfigured: true,
  lmProblem: null,
};

const UNCONFIGURED: ProgramStatus = {
  model: 'openai/gpt-4o-mini',
  optimized: false,
  streaming: true,
  lmConfigured: false,
  lmProblem: 'No language model is configured: set OPENAI_API_KEY and restart.',
};

/** Stands in for the program module: the status is switchable per test. */
const fakeProgram: ProgramStatusProvider & { current: ProgramStatus } = {
  current: CONFIGURED,
  status() {
    return this.current;
  },
};

@Module({ providers: [{ provide: PROGRAM_STATUS, useValue: fakeProgram }], exports: [PROGRAM_STATUS] })
class FakeProgramModule {}

/** The real LmCacheModule is global in the app; here the cache reports itself disabled. */
@Global()
@Module({
  providers: [
    {
      provide: CacheHealthIndicator,
      useValue: { isHealthy: async () => ({ cache: { status: 'up', enabled: false } }) },
    },
  ],
  exports: [CacheHealthIndicator],
})
class FakeCacheModule {}

const compile = () =>
  Test.createTestingModule({
    imports: [FakeCacheModule, HealthModule.register({ imports: [FakeProgramModule] })],
  }).compile();

describe('HealthController (HTTP, real Terminus)', () => {
  let app: INestApplication<App>;

  beforeEach(async () => {
    fakeProgram.current = CONFIGURED;
    const moduleRef = await compile();
    app = moduleRef.createNestApplication<INestApplication<App>>({ logger: false });
    await app.init();
  });

  afterEach(async () => {
    await app?.close();
  });

  describe('GET /health', () => {
    it('answers the seed fields plus version, uptime and the lm dependency when configured', async () => {
      const res = await request(app.getHttpServer()).get('/health').expect(200);
      expect(res.body).toEqual({
        status: 'healthy',
        model: 'openai/gpt-4o-mini',
        optimized: true,
        streaming: false,
        version: '0.1.0',
        uptime_seconds: expect.any(Number),
        dependencies: {
          lm: { status: 'up', model: 'openai/gpt-4o-mini', configured: true },
          cache: { status: 'up', enabled: false },
        },
      });
      expect(res.body.uptime_seconds).toBeGreaterThan(0);
    });

    it('stays 200 but reports degraded, with the problem, when no LM is configured', async () => {
      fakeProgram.current = UNCONFIGURED;
      const res = await request(app.getHttpServer()).get('/health').expect(200);
      expect(res.body).toMatchObject({ status: 'degraded', optimized: false, streaming: true });
      expect(res.body.dependencies.lm).toEqual({
        status: 'down',
        model: 'openai/gpt-4o-mini',
        configured: false,
        problem: UNCONFIGURED.lmProblem,
      });
    });

    it('reports a throwing status source as a down dependency instead of failing', async () => {
      const status = jest.spyOn(fakeProgram, 'status');
      status.mockImplementationOnce(() => {
        throw new Error('status exploded');
      });
      const res = await request(app.getHttpServer()).get('/health').expect(200);
      expect(res.body.status).toBe('degraded');
      expect(res.body.dependencies.lm).toEqual({
        status: 'down',
        configured: false,
        problem: 'status exploded',
      });
      status.mockRestore();
    });
  });

  describe('GET /health/live', () => {
    it('is up without consulting the LM status, even when the LM is not configured', async () => {
      fakeProgram.current = UNCONFIGURED;
      const status = jest.spyOn(fakeProgram, 'status');
      const res = await request(app.getHttpServer()).get('/health/live').expect(200);
      expect(res.body).toEqual({ status: 'ok', info: {}, error: {}, details: {} });
      expect(status).not.toHaveBeenCalled();
      status.mockRestore();
    });
  });

  describe('GET /health/ready', () => {
    it('is up once the app has bootstrapped', async () => {
      expect(app.get(ReadinessService).state).toBe('ready');
      const res = await request(app.getHttpServer()).get('/health/ready').expect(200);
      expect(res.body).toMatchObject({ status: 'ok', info: { readiness: { status: 'up', state: 'ready' } } });
    });

    it('answers 503 while draining, and draining is final', async () => {
      const readiness = app.get(ReadinessService);
      readiness.markDraining();
      readiness.markReady();
      const res = await request(app.getHttpServer()).get('/health/ready').expect(503);
      expect(res.body).toMatchObject({
        status: 'error',
        error: { readiness: { status: 'down', state: 'draining' } },
      });
    });

    it('does not depend on the LM being configured', async () => {
      fakeProgram.current = UNCONFIGURED;
      await request(app.getHttpServer()).get('/health/ready').expect(200);
    });
  });

  it('starts draining when the app shuts down', async () => {
    const readiness = app.get(ReadinessService);
    await app.close();
    expect(readiness.state).toBe('draining');
  });
});

describe('HealthController before bootstrap', () => {
  it('fails readiness with 503 while starting', async () => {
    const moduleRef = await compile();
    moduleRef.useLogger(false);
    expect(moduleRef.get(ReadinessService).state).toBe('starting');
    const failure: unknown = await moduleRef
      .get(HealthController)
      .ready()
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(failure).toBeInstanceOf(ServiceUnavailableException);
    const exception = failure as ServiceUnavailableException;
    expect(exception.getStatus()).toBe(503);
    expect(exception.getResponse()).toMatchObject({
      error: { readiness: { status: 'down', state: 'starting' } },
    });
  });
});

describe('readPackageVersion', () => {
  it('reads the version from package.json two levels up', () => {
    expect(readPackageVersion()).toBe('0.1.0');
  });

  it('falls back when package.json cannot be read', () => {
    const saved = process.env.npm_package_version;
    delete process.env.npm_package_version;
    try {
      expect(readPackageVersion('/nonexistent/a/b')).toBe('unknown');
    } finally {
      if (saved !== undefined) process.env.npm_package_version = saved;
    }
  });
});
