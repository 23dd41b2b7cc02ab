import { EventEmitter } from 'node:events';
import { CLIENT_CLOSED_REQUEST, HttpMetricsMiddleware } from './http-metrics.middleware';
import type { MetricsService } from './metrics.service';

class FakeResponse extends EventEmitter {
  statusCode = 200;
  writableFinished = false;
}

describe('HttpMetricsMiddleware', () => {
  let recordHttp: jest.Mock;
  let middleware: HttpMetricsMiddleware;
  const next = jest.fn();
  const use = (req: Record<string, unknown>, res: FakeResponse) =>
    middleware.use(req as never, res as never, next);

  beforeEach(() => {
    recordHttp = jest.fn();
    next.mockClear();
    middleware = new HttpMetricsMiddleware({ recordHttp } as unknown as MetricsService);
  });

  it('records the route template and the status set when the response finishes', () => {
    const res = new FakeResponse();
    const req = { method: 'POST', originalUrl: '/items/42?x=1', baseUrl: '', route: { path: '/items/:id' } };
    use(req, res);
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
    use({ method: 'POST', originalUrl: '/predict/stream', route: { path: '/predict/stream' } }, res);
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
    use({ method: 'GET', originalUrl: '/random/123' }, res);
    res.emit('finish');
    expect(recordHttp).toHaveBeenCalledWith('GET', 'unmatched', 200, expect.any(Number));
  });

  it.each(['/metrics', '/metrics/prometheus', '/health', '/health/ready?probe=1'])(
    'skips the scrape %s',
    (url) => {
      const res = new FakeResponse();
      use({ method: 'GET', originalUrl: url, route: { path: url } }, res);
      res.emit('finish');
      expect(recordHttp).not.toHaveBeenCalled();
      expect(res.listenerCount('finish')).toBe(0);
    },
  );

  it('does not skip routes that merely start with the same letters', () => {
    const res = new FakeResponse();
    use({ method: 'GET', originalUrl: '/healthy', route: { path: '/healthy' } }, res);
    res.emit('finish');
    expect(recordHttp).toHaveBeenCalledWith('GET', '/healthy', 200, expect.any(Number));
  });

  it('reads the route when the response ends, after routing matched it', () => {
    const res = new FakeResponse();
    const req: Record<string, unknown> = { method: 'POST', originalUrl: '/predict' };
    use(req, res);
    expect(next).toHaveBeenCalledTimes(1);
    req.route = { path: '/predict' };
    res.statusCode = 401;
    res.emit('finish');
    expect(recordHttp).toHaveBeenCalledWith('POST', '/predict', 401, expect.any(Number));
  });
});
