import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import type { HealthIndicatorResult } from '@nestjs/terminus';
import { PROGRAM_STATUS, type ProgramStatusProvider } from '../program/program-status';
import { CacheHealthIndicator } from '../cache/cache.health';
import { LmHealthIndicator } from './indicators/lm.health';
import { LocalModelHealthIndicator } from './indicators/local-model.health';

/** One dependency as `/health` reports it: Terminus' indicator shape (`status` plus details). */
export type DependencyHealth = { status: 'up' | 'down' } & Record<string, unknown>;

/** `GET /health`: the seed's fields (`status, model, optimized, streaming`) plus version, uptime and dependencies. */
export interface HealthSummary {
  status: 'healthy' | 'degraded';
  model: string;
  optimized: boolean;
  streaming: boolean;
  version: string;
  uptime_seconds: number;
  dependencies: Record<string, DependencyHealth>;
}

/**
 * The package version, read at runtime because package.json sits outside `rootDir`. Both `src/health` and
 * `dist/health` are two levels below it.
 */
export function readPackageVersion(dir: string = __dirname): string {
  try {
    const pkg = JSON.parse(readFileSync(join(dir, '..', '..', 'package.json'), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return process.env.npm_package_version ?? 'unknown';
  }
}

@Injectable()
export class HealthService {
  readonly version = readPackageVersion();

  constructor(
    @Inject(PROGRAM_STATUS) private readonly program: ProgramStatusProvider,
    private readonly lm: LmHealthIndicator,
    private readonly cache: CacheHealthIndicator,
    private readonly localModel: LocalModelHealthIndicator,
  ) {}

  /** A monitoring summary, always answered with 200: a down dependency makes it `degraded`, not an error. */
  async summary(): Promise<HealthSummary> {
    const dependencies = await this.dependencies();
    const degraded = Object.values(dependencies).some((d) => d.status !== 'up');
    const { model, optimized, streaming } = this.program.status();
    return {
      status: degraded ? 'degraded' : 'healthy',
      model,
      optimized,
      streaming,
      version: this.version,
      uptime_seconds: Math.round(process.uptime() * 10) / 10,
      dependencies,
    };
  }

  /** Every dependency indicator, merged by key; add the cache and Redis indicators here as they arrive. */
  private async dependencies(): Promise<Record<string, DependencyHealth>> {
    const checks: (() => HealthIndicatorResult | null | Promise<HealthIndicatorResult>)[] = [
      () => this.lm.isHealthy(),
      // Only when DSPY_MODEL=local/…: file, size and load state of the in-process model.
      () => this.localModel.isHealthy(),
      // A sick cache tier (Redis down) degrades /health; it never makes the service unready.
      () => this.cache.isHealthy(),
    ];
    const results = await Promise.all(checks.map(async (check) => check()));
    return Object.assign({}, ...results) as Record<string, DependencyHealth>;
  }
}
