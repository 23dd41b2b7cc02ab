/** What the rest of the service may ask the program about (health, docs), without depending on ProgramService. */
export const PROGRAM_STATUS = Symbol('PROGRAM_STATUS');

export interface ProgramStatus {
  /** The configured model name (`DSPY_MODEL`). */
  model: string;
  /** Whether a saved program state (`PROGRAM_STATE_PATH`) was applied. */
  optimized: boolean;
  streaming: boolean;
  /** False when no LM credentials/endpoint are configured: prediction routes answer 503. */
  lmConfigured: boolean;
  /** Why the LM is not usable, naming the variables to set; null when it is. */
  lmProblem: string | null;
}

export interface ProgramStatusProvider {
  status(): ProgramStatus;
}
