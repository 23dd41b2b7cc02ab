/** Live progress of an optimization or evaluation, for a terminal bar, log lines or an event stream. */
import type { TrialParams } from './tpe';

export type OptimizerPhase = 'bootstrap' | 'propose' | 'search' | 'evaluate' | 'compile';

export type ProgressEvent =
  | { type: 'plan'; lines: string[]; estimatedLmCalls: number | null }
  | { type: 'warning'; message: string }
  | { type: 'phase'; phase: OptimizerPhase; message: string }
  | { type: 'bootstrap:set'; index: number; total: number; demos: number }
  | { type: 'propose:summary'; summary: string | null }
  | { type: 'propose:instruction'; predictor: number; index: number; tip: string | null; instruction: string }
  | { type: 'eval:start'; label: string; total: number }
  | { type: 'eval:progress'; label: string; done: number; total: number; sum: number; errors: number }
  | { type: 'eval:done'; label: string; score: number; errors: number }
  | {
      type: 'trial';
      /** `default`: the unmodified program; `full`: a full evaluation chosen from minibatch results. */
      kind: 'default' | 'trial' | 'full';
      /** 1-based search trial (0 for the default program). */
      n: number;
      total: number;
      params: TrialParams;
      score: number;
      full: boolean;
      best: number;
      /** Set when the trial's evaluation failed and it scored 0 (DSPy's `eval_candidate_program`). */
      error?: string;
    }
  | { type: 'best'; score: number; params: TrialParams }
  | { type: 'stopped'; reason: StoppedReason; message: string }
  | { type: 'done'; best: number | null; stoppedReason?: StoppedReason };

export type StoppedReason = 'budget' | 'abort' | 'error';

export type ProgressReporter = (event: ProgressEvent) => void;

/** Call a reporter without letting a failing renderer break the run. */
export function emitProgress(reporter: ProgressReporter | undefined, event: ProgressEvent): void {
  if (!reporter) return;
  try {
    reporter(event);
  } catch {
    // Progress is best effort.
  }
}
