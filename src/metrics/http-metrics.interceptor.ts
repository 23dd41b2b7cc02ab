import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Observable } from 'rxjs';
import { MetricsService } from './metrics.service';

/** What this interceptor reads from Express's request (the project does not depend on @types/express). */
type RoutedRequest = IncomingMessage & { originalUrl?: string; baseUrl?: string; route?: { path?: unknown } };

/** Scrapes and probes would drown the traffic they measure. */
const SCRAPE_PATH = /^\/(metrics|health)(\/|$)/;

/** Status recorded when the client went away before the response finished (nginx's convention). */
export const CLIENT_CLOSED_REQUEST = 499;

/**
 * Records `http_request_duration_seconds{method,route,status}` for every routed request. The route label is the
 * Express route template (`/predict`), never the raw URL, so label cardinality stays bounded. The status is read
 * when the response finishes, which covers errors too: the global filter has written its status by then.
 * Requests rejected before interceptors run (guards, unmatched routes) are not seen here.
 */
@Injectable()
export class HttpMetricsInterceptor implements NestInterceptor {
  constructor(private readonly metrics: MetricsService) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const http = context.switchToHttp();
    const req = http.getRequest<RoutedRequest>();
    const res = http.getResponse<ServerResponse>();
    const path = (req.originalUrl ?? req.url ?? '').split('?')[0];
    if (SCRAPE_PATH.test(path)) return next.handle();

    const started = process.hrtime.bigint();
    const route = routeTemplate(req);
    let recorded = false;
    const record = (status: number) => {
      if (recorded) return;
      recorded = true;
      res.off('finish', onFinish);
      res.off('close', onClose);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.metrics.recordHttp(req.method ?? 'GET', route, status, seconds);
    };
    const onFinish = () => record(res.statusCode);
    // `close` without `finish`: the client disconnected (an abandoned SSE stream, a timeout on its side).
    const onClose = () => record(res.writableFinished ? res.statusCode : CLIENT_CLOSED_REQUEST);
    res.on('finish', onFinish);
    res.on('close', onClose);
    return next.handle();
  }
}

function routeTemplate(req: RoutedRequest): string {
  const path = req.route?.path;
  if (typeof path !== 'string') return 'unmatched';
  return `${req.baseUrl ?? ''}${path}` || '/';
}
