import { registerAs } from '@nestjs/config';
import { readEnv } from './env';

/** Server settings (the seed's HOST, PORT, WORKERS). */
export const appConfig = registerAs('app', () => {
  const env = readEnv('app');
  return {
    host: env.string('HOST', '0.0.0.0'),
    port: env.int('PORT', 8000, { min: 0, max: 65535 }),
    workers: env.int('WORKERS', 1, { min: 1, max: 64 }),
  };
});
