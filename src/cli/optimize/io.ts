/** Where a command writes: stdout for the result, stderr for progress and errors. Injectable for tests. */
export interface OutputStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface CliIO {
  stdout: OutputStream;
  stderr: OutputStream;
  /** Cancels the run (Ctrl-C); the best fully evaluated program is still written. */
  signal?: AbortSignal;
}

/** Exit codes: 0 done (also when a budget stopped the search), 1 the run failed, 2 bad usage or input. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** The process's streams, with Ctrl-C wired to cancel the run (a second Ctrl-C exits at once). */
export function processIO(): CliIO {
  const controller = new AbortController();
  process.on('SIGINT', () => {
    if (controller.signal.aborted) process.exit(EXIT.interrupted);
    process.stderr.write('\nInterrupted: stopping after the current step (Ctrl-C again to quit now)\n');
    controller.abort();
  });
  return { stdout: process.stdout, stderr: process.stderr, signal: controller.signal };
}
