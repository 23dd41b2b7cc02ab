import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { getLocalModel } from '../../program/program.providers';

/**
 * The in-process local model (DSPY_MODEL=local/…): file, size and load state. Absent when the service uses an
 * HTTP endpoint; `down` while the model is downloading, loading or failed, so /health shows why answers wait.
 */
@Injectable()
export class LocalModelHealthIndicator {
  constructor(private readonly indicator: HealthIndicatorService) {}

  /** Null when no local model is in use (the key is then left out of /health). */
  isHealthy() {
    const model = getLocalModel();
    if (!model) return null;
    const check = this.indicator.check('local_model');
    try {
      const s = model.status();
      const details = {
        file: s.file,
        size_bytes: s.sizeBytes,
        state: s.state,
        load_ms: s.loadMs,
        sequences: s.sequences,
        busy: s.busy,
        queued: s.queued,
        ...(s.error ? { problem: s.error } : {}),
      };
      return s.state === 'loaded' ? check.up(details) : check.down(details);
    } catch (error: unknown) {
      return check.down({ problem: error instanceof Error ? error.message : String(error) });
    }
  }
}
