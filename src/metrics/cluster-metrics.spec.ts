import { Counter, Registry } from 'prom-client';
import { ServiceUnavailableError } from '../common/errors/service-errors';
import {
  CLUSTER_WORKER_ENV,
  ClusterMessage,
  requestClusterMetrics,
  serveWorkerMetrics,
} from './cluster-metrics';
import { MetricsService } from './metrics.service';

// A cluster worker, as far as these modules can tell; the IPC channel to the primary is replaced per test.
jest.mock('node:cluster', () => ({ __esModule: true, default: { isWorker: true, isPrimary: false } }));

describe('cluster metrics (worker side)', () => {
  const originalSend = Object.getOwnPropertyDescriptor(process, 'send');
  let sent: any[];

  beforeEach(() => {
    sent = [];
    process.env[CLUSTER_WORKER_ENV] = '1';
    process.send = ((message: unknown) => {
      sent.push(message);
      return true;
    }) as typeof process.send;
  });

  afterEach(() => {
    if (originalSend) Object.defineProperty(process, 'send', originalSend);
    else delete process.send;
    delete process.env[CLUSTER_WORKER_ENV];
  });

  const fromPrimary = (message: unknown) => process.emit('message' as any, message as any);

  it('announces itself and answers collect requests with its registry as JSON', async () => {
    const registry = new Registry();
    new Counter({ name: 'things_total', help: 'things', registers: [registry] }).inc(3);
    serveWorkerMetrics(registry);
    expect(sent).toEqual([{ type: ClusterMessage.metricsReady }]);

    fromPrimary({ type: ClusterMessage.collectRequest, id: 7 });
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent[1]).toMatchObject({
      type: ClusterMessage.collectResponse,
      id: 7,
      metrics: [[{ name: 'things_total', values: [{ value: 3 }] }]],
    });
  });

  it('resolves a scrape with the text the primary aggregated', async () => {
    const scrape = requestClusterMetrics(1000);
    const request = sent.find((m) => m.type === ClusterMessage.aggregateRequest);
    fromPrimary({ type: ClusterMessage.aggregateResponse, id: request.id, text: 'things_total 6\n' });
    await expect(scrape).resolves.toBe('things_total 6\n');
  });

  it("rejects a scrape with the primary's error, or when it does not answer in time", async () => {
    const failing = requestClusterMetrics(1000);
    const request = sent.find((m) => m.type === ClusterMessage.aggregateRequest);
    fromPrimary({ type: ClusterMessage.aggregateResponse, id: request.id, error: 'worker 2 exited' });
    await expect(failing).rejects.toThrow('worker 2 exited');
    await expect(requestClusterMetrics(20)).rejects.toThrow(/did not answer within 20 ms/);
  });

  it('makes MetricsService answer 503 (service_unavailable) when the cluster view is unavailable', async () => {
    const metrics = new MetricsService();
    const scrape = metrics.prometheusText();
    const request = sent.filter((m) => m.type === ClusterMessage.aggregateRequest).at(-1);
    fromPrimary({
      type: ClusterMessage.aggregateResponse,
      id: request.id,
      error: 'a worker did not send its metrics',
    });
    const error = await scrape.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect((error as ServiceUnavailableError).message).toMatch(/a worker did not send its metrics/);
  });
});
