import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';

export type ReadinessState = 'starting' | 'ready' | 'draining';

/**
 * Whether this instance should receive traffic. It becomes ready once every module has initialised (the program
 * state is loaded by then) and starts draining as soon as shutdown begins, so `/health/ready` answers 503 while
 * in-flight requests finish and the load balancer takes the instance out. Draining is final.
 */
@Injectable()
export class ReadinessService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(ReadinessService.name);
  private current: ReadinessState = 'starting';

  get state(): ReadinessState {
    return this.current;
  }

  get isReady(): boolean {
    return this.current === 'ready';
  }

  markReady(): void {
    if (this.current !== 'starting') return;
    this.current = 'ready';
  }

  markDraining(): void {
    if (this.current === 'draining') return;
    this.current = 'draining';
    this.logger.log('draining: readiness now fails');
  }

  onApplicationBootstrap(): void {
    this.markReady();
  }

  /** The first shutdown hook Nest runs, before Terminus' graceful wait and before the server closes. */
  onModuleDestroy(): void {
    this.markDraining();
  }
}
