import { ConfigError } from './env';
import { lmConfig } from './lm.config';

describe('lmConfig timeouts', () => {
  const NAMES = [
    'LM_TIMEOUT_MS',
    'LM_CONNECT_TIMEOUT_MS',
    'LM_FIRST_TOKEN_TIMEOUT_MS',
    'LM_STREAM_IDLE_TIMEOUT_MS',
    'REQUEST_DEADLINE_MS',
  ];
  const saved = { ...process.env };

  beforeEach(() => {
    for (const name of NAMES) delete process.env[name];
  });

  afterAll(() => {
    process.env = saved;
  });

  it('defaults: 60 s per attempt, 10 s connect, stream clocks following LM_TIMEOUT_MS, a 90 s request deadline', () => {
    expect(lmConfig()).toMatchObject({
      timeoutMs: 60_000,
      connectTimeoutMs: 10_000,
      firstTokenTimeoutMs: 60_000,
      streamIdleTimeoutMs: 60_000,
      requestDeadlineMs: 90_000,
    });
  });

  it('lets the stream clocks follow LM_TIMEOUT_MS unless set on their own', () => {
    process.env.LM_TIMEOUT_MS = '250';
    process.env.LM_STREAM_IDLE_TIMEOUT_MS = '5000';
    expect(lmConfig()).toMatchObject({ timeoutMs: 250, firstTokenTimeoutMs: 250, streamIdleTimeoutMs: 5000 });
  });

  it.each([
    'LM_CONNECT_TIMEOUT_MS',
    'LM_FIRST_TOKEN_TIMEOUT_MS',
    'LM_STREAM_IDLE_TIMEOUT_MS',
    'REQUEST_DEADLINE_MS',
  ])('refuses a bad %s, naming it', (name) => {
    process.env[name] = '50';
    expect(() => lmConfig()).toThrow(
      new ConfigError(`Invalid configuration (lm): ${name}="50" must be >= 100`),
    );
    process.env[name] = '1.5s';
    expect(() => lmConfig()).toThrow(ConfigError);
    expect(() => lmConfig()).toThrow(name);
  });
});
