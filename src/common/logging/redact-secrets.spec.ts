import { REDACTED, redactSecrets } from './redact-secrets';

describe('redactSecrets', () => {
  it('removes every occurrence of each configured secret, whatever its shape', () => {
    const text = 'Incorrect API key provided: local-key-123. Try local-key-123 again; other-key too';
    expect(redactSecrets(text, ['local-key-123', 'other-key'])).toBe(
      `Incorrect API key provided: ${REDACTED}. Try ${REDACTED} again; ${REDACTED} too`,
    );
  });

  it('replaces a secret that contains another one whole', () => {
    expect(redactSecrets('key abc-long here', ['abc', 'abc-long'])).toBe(`key ${REDACTED} here`);
  });

  it('removes credentials by shape: auth scheme tokens and sk- keys, masked or not', () => {
    const text =
      'Authorization: Bearer tok.en-1; basic dXNlcjpwdw==, key sk-proj-AbC123xyz_789 or sk-********************abcd';
    const out = redactSecrets(text, []);
    expect(out).toBe(`Authorization: Bearer ${REDACTED}; basic ${REDACTED}, key ${REDACTED} or ${REDACTED}`);
  });

  it('leaves ordinary text alone, and ignores empty secrets', () => {
    const text = 'The language model provider rate-limited the request (ask for a bigger quota).';
    expect(redactSecrets(text, ['', 'not-there'])).toBe(text);
  });
});
