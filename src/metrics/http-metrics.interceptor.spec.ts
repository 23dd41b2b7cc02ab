import { EventEmitter } from 'node:events';
import type { CallHandler, ExecutionContext } from '@nestjs/common';
import { of } from 'rxjs';
import { CLIENT_CLOSED_REQUEST, HttpMetricsInterceptor } from './http-metrics.interceptor';
import type { MetricsService } from './metrics.service';

class FakeResponse extends EventEmitter {
  statusCode = 200;
  writableFinished = false;
}

function httpContext(req: Record<string, unknown>, res: FakeResponse, type = 'http'): ExecutionContext {
  return {
    getType: () => type,
    switchToHttp: () => ({ getRequest: () => req, getResponse: () => res }),
  } as unknown as ExecutionContext;
}

describe('HttpMetricsInterceptor', () => {
  let recordHttp: jest.Mock;
  let interceptor: HttpMetricsInterceptor;
  const next: CallHandler = { handle: () => of('body') };

  beforeEach(() => {
    recordHttp = jest.fn();
    interceptor = new HttpMetricsInterceptor({ recordHttp } as unknown as MetricsService);
  });

  it('records the route template and the status set when the response finishes', () => {
    const res = new FakeResponse();
    const req = { method: 'POST', originalUrl: '/items/42?x=1', baseUrl: '', route: { path: '/items/:id' } };
    interceptor.intercept(httpContext(req, res), next);
    expect(recordHttp).not.toHaveBeenCalled();
    res.statusCode = 422;
    res.emit('finish');
    res.emit('close');
    expect(recordHttp).toHaveBeenCalledTimes(1);
    expect(recordHttp).toHaveBeenCalledWith('POST', '/items/:id', 422, expect.any(Number));
    expect(recordHttp.mock.calls[0][3]).toBeGreaterThanOrEqual(0);
  });

  it('records a client disconnect before the response finished as 499', () => {
    const res = new FakeResponse();
    interceptor.intercept(
      httpContext(
        { method: 'POST', originalUrl: '/predict/stream', route: { path: '/predict/stream' } },
        res,
      ),
      next,
    );
    res.emit('close');
    expect(recordHttp).toHaveBeenCalledWith(
      'POST',
      '/predict/stream',
      CLIENT_CLOSED_REQUEST,
      expect.any(Number),
    );
  });

  it('labels a request without a route template as unmatched, never with its raw URL', () => {
    const res = new FakeResponse();
    interceptor.intercept(httpContext({ method: 'GET', originalUrl: '/random/123' }, res), next);
    res.emit('finish');
    expect(recordHttp).toHaveBeenCalledWith('GET', 'unmatched', 200, expect.any(Number));
  });

  it.each(['/metrics', '/metrics/prometheus', '/health', '/health/ready?probe=1'])(
    'skips the scrape %s',
    (url) => {
      const res = new FakeResponse();
      interceptor.intercept(
        httpContext({ method: 'GET', originalUrl: url, route: { path: url } }, res),
        next,
      );
      res.emit('finish');
      expect(recordHttp).not.toHaveBeenCalled();
      expect(res.listenerCount('finish')).toBe(0);
    },
  );

  it('does not skip routes that merely start with the same letters', () => {
    const res = new FakeResponse();
    interceptor.intercept(
      httpContext({ method: 'GET', originalUrl: '/healthy', route: { path: '/healthy' } }, res),
      next,
    );
    res.emit('finish');
    expect(recordHttp).toHaveBeenCalledWith('GET', '/healthy', 200, expect.any(Number));
  });

  it('ignores non-HTTP contexts', () => {
    const res = new FakeResponse();
    interceptor.intercept(httpContext({}, res, 'rpc'), next);
    expect(res.listenerCount('finish')).toBe(0);
  });
});
