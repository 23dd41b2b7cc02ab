import { Injectable, NestMiddleware } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MetricsService } from './metrics.service';

/** What this middleware reads from Express's request (the project does not depend on @types/express). */
type RoutedRequest = IncomingMessage & { originalUrl?: string; baseUrl?: string; route?: { path?: unknown } };

/** Scrapes and probes would drown the traffic they measure. */
const SCRAPE_PATH = /^\/(metrics|health)(\/|$)/;

/** Status recorded when the client went away before the response finished (nginx's convention). */
export const CLIENT_CLOSED_REQUEST = 499;

/**
 * Records `http_request_duration_seconds{method,route,status}` for every request. The route label is the Express
 * route template (`/predict`), read when the response ends (routing has matched by then), never the raw URL, so
 * label cardinality stays bounded; a request no route matched is `unmatched`. The status is read at the end too,
 * which covers errors, guards' 401/429 and the filter's problems alike.
 *
 * A middleware rather than an interceptor: with no interceptor registered Nest skips its interceptor chain (an
 * rxjs pipeline and two AsyncResource bindings per request), which the benchmark's profile showed on every call.
 */
@Injectable()
export class HttpMetricsMiddleware implements NestMiddleware {
  constructor(private readonly metrics: MetricsService) {}

  use(req: RoutedRequest, res: ServerResponse, next: () => void): void {
    const path = (req.originalUrl ?? req.url ?? '').split('?', 1)[0];
    if (SCRAPE_PATH.test(path)) return next();

    const started = process.hrtime.bigint();
    let recorded = false;
    const record = (status: number) => {
      if (recorded) return;
      recorded = true;
      res.off('finish', onFinish);
      res.off('close', onClose);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.metrics.recordHttp(req.method ?? 'GET', routeTemplate(req), status, seconds);
    };
    const onFinish = () => record(res.statusCode);
    // `close` without `finish`: the client disconnected (an abandoned SSE stream, a timeout on its side).
    const onClose = () => record(res.writableFinished ? res.statusCode : CLIENT_CLOSED_REQUEST);
    res.on('finish', onFinish);
    res.on('close', onClose);
    next();
  }
}

function routeTemplate(req: RoutedRequest): string {
  const path = req.route?.path;
  if (typeof path !== 'string') return 'unmatched';
  return `${req.baseUrl ?? ''}${path}` || '/';
}
