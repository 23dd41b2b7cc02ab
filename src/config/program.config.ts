import { registerAs } from '@nestjs/config';
import { readEnv } from './env';

/** The served program and its routes. */
export const programConfig = registerAs('program', () => {
  const env = readEnv('program');
  const streamFields = env.string('STREAM_FIELDS', 'answer');
  return {
    statePath: env.optionalString('PROGRAM_STATE_PATH'),
    enableStreaming: env.bool('ENABLE_STREAMING', true),
    /** Output fields streamed as `token` events (comma-separated). */
    streamFields: streamFields
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    streamHeartbeatMs: env.int('STREAM_HEARTBEAT_MS', 15_000, { min: 1000 }),
    batchMaxItems: env.int('BATCH_MAX_ITEMS', 32, { min: 1, max: 1000 }),
    batchConcurrency: env.int('BATCH_CONCURRENCY', 4, { min: 1, max: 64 }),
    bodyLimitBytes: env.int('BODY_LIMIT_BYTES', 1_048_576, { min: 1024 }),
  };
});

export type ProgramConfig = ReturnType<typeof programConfig>;
