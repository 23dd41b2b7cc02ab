import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { Request } from 'express';
import { ApiKeyRequiredError } from '../common/errors/service-errors';
import { securityConfig } from '../config/security.config';
import { ApiKeySet, presentedKey } from './api-key';
import { isMetricsPath, isProbePath } from './open-routes';

/** With API_KEYS set, every route but the probes (and /metrics unless METRICS_REQUIRE_KEY) needs a valid key. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly keys: ApiKeySet;

  constructor(@Inject(securityConfig.KEY) private readonly cfg: ConfigType<typeof securityConfig>) {
    this.keys = new ApiKeySet(cfg.apiKeys);
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.keys.enabled || context.getType() !== 'http') return true;
    const req = context.switchToHttp().getRequest<Request>();
    if (isProbePath(req.path)) return true;
    if (isMetricsPath(req.path) && !this.cfg.metricsRequireKey) return true;
    const key = presentedKey(req.headers);
    if (key === undefined) throw new ApiKeyRequiredError(false);
    if (this.keys.match(key) < 0) throw new ApiKeyRequiredError(true);
    return true;
  }
}
