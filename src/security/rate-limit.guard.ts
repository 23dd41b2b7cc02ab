import { ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { Reflector } from '@nestjs/core';
import {
  getOptionsToken,
  getStorageToken,
  ThrottlerGuard,
  type ThrottlerLimitDetail,
  type ThrottlerModuleOptions,
  type ThrottlerStorage,
} from '@nestjs/throttler';
import { createHash } from 'node:crypto';
import type { Request } from 'express';
import { RateLimitedError } from '../common/errors/service-errors';
import { securityConfig } from '../config/security.config';
import { ApiKeySet, keyId, presentedKey } from './api-key';
import { isDocsPath, isMetricsPath, isProbePath } from './open-routes';

/**
 * RATE_LIMIT requests per window per client: a valid API key is its own bucket (shared by every address using
 * it); anything else (no key, a wrong key) counts against the client address, so guessing keys is limited too.
 * One bucket per client across all routes. Probes, metrics and docs are never limited.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  private readonly keys: ApiKeySet;

  constructor(
    @Inject(getOptionsToken()) options: ThrottlerModuleOptions,
    @Inject(getStorageToken()) storage: ThrottlerStorage,
    reflector: Reflector,
    @Inject(securityConfig.KEY) private readonly cfg: ConfigType<typeof securityConfig>,
  ) {
    super(options, storage, reflector);
    this.keys = new ApiKeySet(cfg.apiKeys);
  }

  protected override shouldSkip(context: ExecutionContext): Promise<boolean> {
    if (this.cfg.rateLimit === 0 || context.getType() !== 'http') return Promise.resolve(true);
    const { path } = context.switchToHttp().getRequest<Request>();
    return Promise.resolve(isProbePath(path) || isMetricsPath(path) || isDocsPath(path));
  }

  protected override getTracker(req: Record<string, any>): Promise<string> {
    const request = req as Request;
    const key = presentedKey(request.headers);
    if (key !== undefined && (!this.keys.enabled || this.keys.match(key) >= 0)) {
      return Promise.resolve(`key:${keyId(key)}`);
    }
    return Promise.resolve(`ip:${request.ip ?? request.socket.remoteAddress ?? 'unknown'}`);
  }

  protected override generateKey(_context: ExecutionContext, tracker: string, name: string): string {
    return createHash('sha256').update(`dspy-nest-api:${name}:${tracker}`).digest('hex');
  }

  protected override throwThrottlingException(
    _context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    const seconds = detail.timeToBlockExpire > 0 ? detail.timeToBlockExpire : detail.timeToExpire;
    throw new RateLimitedError(Math.max(1, Math.ceil(seconds)));
  }
}
