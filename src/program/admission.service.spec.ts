import { Test } from '@nestjs/testing';
import type { Response } from 'express';
import { EventEmitter } from 'node:events';
import { ServiceDrainingError, ServiceUnavailableError } from '../common/errors/service-errors';
import type { ReliabilityConfig } from '../config/reliability.config';
import { reliabilityConfig } from '../config/reliability.config';
import { LMServerError, type LMProvider, type LMRequest } from '../dspy';
import { MetricsService } from '../metrics/metrics.service';
import { AdmissionService } from './admission.service';
import { CircuitBreakerProvider } from './resilient-provider';
import { clientSignal } from './sse';

const CONFIG: ReliabilityConfig = {
  maxConcurrentPredictions: 1,
  predictionQueueSize: 1,
  predictionQueueTimeoutMs: 20,
  overloadRetryAfterSeconds: 3,
  shutdownGraceMs: 0,
  circuitFailureThreshold: 2,
  circuitOpenMs: 1000,
};

/** The parts of an Express response `clientSignal` reads: its route, whether it finished, and `close`. */
function fakeResponse(path: string): Response & { leave(): void } {
  const res = Object.assign(new EventEmitter(), {
    req: { route: { path }, path },
    closed: false,
    writableFinished: false,
    leave() {
      res.closed = true;
      res.emit('close');
    },
  });
  return res as unknown as Response & { leave(): void };
}

describe('AdmissionService', () => {
  let admission: AdmissionService;
  let metrics: MetricsService;
  let breaker: CircuitBreakerProvider;

  beforeEach(async () => {
    const failing = {
      complete: () => Promise.reject(new LMServerError('down')),
    } as unknown as LMProvider;
    breaker = new CircuitBreakerProvider(failing, { failureThreshold: 2, openMs: 60_000 });
    const moduleRef = await Test.createTestingModule({
      providers: [AdmissionService, MetricsService, { provide: reliabilityConfig.KEY, useValue: CONFIG }],
    }).compile();
    await moduleRef.init();
    admission = moduleRef.get(AdmissionService);
    metrics = moduleRef.get(MetricsService);
  });

  const reliability = () => metrics.reliability.summary();

  it('counts a full queue and a queue timeout as sheds with their reasons', async () => {
    const release = await admission.acquire();
    const queued = admission.acquire();
    await expect(admission.acquire()).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(reliability().shed).toEqual({ queue_full: 1, queue_timeout: 0 });
    expect(reliability()).toMatchObject({ in_flight: 1, queued: 1 });
    await expect(queued).rejects.toMatchObject({ code: 'service_unavailable', retryAfterSeconds: 3 });
    expect(reliability().shed).toEqual({ queue_full: 1, queue_timeout: 1 });
    release();
    expect(reliability()).toMatchObject({ in_flight: 0, queued: 0 });
    expect(await metrics.prometheusText()).toContain('admission_shed_total{reason="queue_timeout"} 1');
  });

  it('counts refusals while draining: queued requests and new ones', async () => {
    const release = await admission.acquire();
    const queued = admission.acquire();
    admission.onModuleDestroy();
    await expect(queued).rejects.toBeInstanceOf(ServiceDrainingError);
    await expect(admission.acquire()).rejects.toBeInstanceOf(ServiceDrainingError);
    expect(reliability().refused_draining).toBe(2);
    expect(reliability().shed).toEqual({ queue_full: 0, queue_timeout: 0 });
    release();
  });

  it('counts a client that leaves while holding a slot, by route, and not one that leaves after', async () => {
    const stream = fakeResponse('/predict/stream');
    const release = await admission.acquire(clientSignal(stream));
    stream.leave();
    release();
    const predict = fakeResponse('/predict');
    const releasePredict = await admission.acquire(clientSignal(predict));
    releasePredict();
    predict.leave();
    expect(reliability().client_disconnects).toEqual({ predict: 0, stream: 1, batch: 0 });
  });

  it('does not count a client that leaves while queued as aborted work', async () => {
    const release = await admission.acquire();
    const batch = fakeResponse('/batch');
    const queued = admission.acquire(clientSignal(batch));
    batch.leave();
    await expect(queued).rejects.toBeInstanceOf(ServiceUnavailableError);
    release();
    expect(reliability().client_disconnects).toEqual({ predict: 0, stream: 0, batch: 0 });
    expect(reliability()).toMatchObject({ in_flight: 0, queued: 0 });
  });

  it('takes no slot for a client that left before asking', async () => {
    const gone = fakeResponse('/predict');
    gone.leave();
    await expect(admission.acquire(clientSignal(gone))).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(admission.inFlight).toBe(0);
    expect(reliability().shed).toEqual({ queue_full: 0, queue_timeout: 0 });
  });

  it('publishes a circuit breaker (as the LM_CLIENT factory registers it): state, openings, refused calls', async () => {
    metrics.reliability.watchCircuit(breaker);
    expect(reliability().circuit).toEqual({ state: 'closed', state_value: 0, opened: 0, rejected: 0 });
    expect(await metrics.prometheusText()).toContain('circuit_breaker_state 0');
    const call = () => breaker.complete({} as LMRequest).catch((e: unknown) => e);
    expect(await call()).toBeInstanceOf(LMServerError);
    expect(await call()).toBeInstanceOf(LMServerError);
    expect(await call()).toBeInstanceOf(ServiceUnavailableError);
    expect(reliability().circuit).toEqual({ state: 'open', state_value: 1, opened: 1, rejected: 1 });
    const text = (await metrics.prometheusText()).split('\n');
    expect(text).toEqual(
      expect.arrayContaining([
        'circuit_breaker_state 1',
        'circuit_breaker_opened_total 1',
        'circuit_breaker_rejected_total 1',
      ]),
    );
  });
});
