import { Controller, Get, type INestApplication, Param, UnprocessableEntityException } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import type { App } from 'supertest/types';
import { observabilityConfig } from '../config/observability.config';
import { MetricsModule } from './metrics.module';
import { MetricsService } from './metrics.service';

@Controller('things')
class ThingsController {
  @Get(':id')
  get(@Param('id') id: string) {
    if (id === 'bad') throw new UnprocessableEntityException('bad thing');
    return { id };
  }
}

async function createApp(enableMetrics: boolean): Promise<INestApplication<App>> {
  const moduleRef = await Test.createTestingModule({
    imports: [MetricsModule],
    controllers: [ThingsController],
  })
    .overrideProvider(observabilityConfig.KEY)
    .useValue({ enableMetrics, logLevel: 'info', logPrompts: false })
    .compile();
  const app = moduleRef.createNestApplication<INestApplication<App>>({ logger: false });
  await app.init();
  return app;
}

describe('MetricsController (HTTP)', () => {
  describe('with ENABLE_METRICS=true', () => {
    let app: INestApplication<App>;

    beforeAll(async () => {
      app = await createApp(true);
    });

    afterAll(async () => {
      await app.close();
    });

    it('GET /metrics answers the JSON summary from the service', async () => {
      app.get(MetricsService).recordPrediction({
        route: 'predict',
        latencySeconds: 0.5,
        usage: { m: { prompt_tokens: 7, completion_tokens: 3 } },
        costUsd: 0.01,
        cached: false,
      });
      const res = await request(app.getHttpServer()).get('/metrics').expect(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toMatchObject({
        total_requests: 1,
        total_errors: 0,
        avg_latency_seconds: 0.5,
        p95_latency_seconds: 0.5,
        total_tokens: 10,
        tokens_by_model: { m: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } },
        total_cost_usd: 0.01,
      });
    });

    it('GET /metrics/prometheus answers the text exposition with its content type', async () => {
      const res = await request(app.getHttpServer()).get('/metrics/prometheus').expect(200);
      // Express reorders the parameters; their set is what Prometheus negotiates on.
      const params = String(res.headers['content-type']).split(/;\s*/).sort();
      expect(params).toEqual(['charset=utf-8', 'text/plain', 'version=0.0.4']);
      expect(res.text).toContain('# TYPE predictions_total counter');
      expect(res.text.split('\n')).toContain('lm_tokens_total{model="m",kind="prompt"} 7');
    });

    it('records routed requests by template and status (errors included) but not the scrapes', async () => {
      await request(app.getHttpServer()).get('/things/1').expect(200);
      await request(app.getHttpServer()).get('/things/2').expect(200);
      await request(app.getHttpServer()).get('/things/bad').expect(422);
      await request(app.getHttpServer()).get('/metrics').expect(200);
      const res = await request(app.getHttpServer()).get('/metrics/prometheus').expect(200);
      const lines = res.text.split('\n');
      expect(lines).toContain(
        'http_request_duration_seconds_count{method="GET",route="/things/:id",status="200"} 2',
      );
      expect(lines).toContain(
        'http_request_duration_seconds_count{method="GET",route="/things/:id",status="422"} 1',
      );
      expect(res.text).not.toContain('route="/metrics');
      expect(res.text).not.toContain('route="/things/1"');
    });
  });

  describe('with ENABLE_METRICS=false', () => {
    let app: INestApplication<App>;

    beforeAll(async () => {
      app = await createApp(false);
    });

    afterAll(async () => {
      await app.close();
    });

    it.each(['/metrics', '/metrics/prometheus'])('GET %s answers 404 Metrics are disabled', async (path) => {
      const res = await request(app.getHttpServer()).get(path).expect(404);
      expect(res.body).toMatchObject({ statusCode: 404, message: 'Metrics are disabled' });
    });
  });
});
