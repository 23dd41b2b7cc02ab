/** What replaces a secret in a log line; the same word pino's `redact` paths write. */
export const REDACTED = '[Redacted]';

/** Credentials recognisable by shape: an HTTP auth scheme's token, an OpenAI-style `sk-…` key (masked or not). */
const CREDENTIAL_PATTERNS: ReadonlyArray<[RegExp, string]> = [
  [/\b(Bearer|Basic)\s+[^\s"',;)\]]+/gi, `$1 ${REDACTED}`],
  [/\bsk-[A-Za-z0-9_*-]{8,}/g, REDACTED],
];

/**
 * `text` without any of `secrets` (the configured keys, matched by value) and without anything shaped like a
 * credential. For free text that comes from outside, such as an upstream's error message: OpenAI-compatible
 * servers may quote the key they were sent ("Incorrect API key provided: …"), and pino's path-based redaction
 * cannot see inside a string.
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  // Longest first, so a key that contains another is replaced whole.
  for (const secret of [...secrets].filter(Boolean).sort((a, b) => b.length - a.length)) {
    out = out.split(secret).join(REDACTED);
  }
  for (const [pattern, replacement] of CREDENTIAL_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}
