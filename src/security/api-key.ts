import { createHash, timingSafeEqual } from 'node:crypto';

/** The key a request presents: `Authorization: Bearer <key>` or `x-api-key: <key>`; undefined when none. */
export function presentedKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (match) return match[1];
  }
  const header = headers['x-api-key'];
  if (typeof header === 'string' && header.trim() !== '') return header.trim();
  return undefined;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * Constant-time membership over the configured keys: both sides are hashed to 32 bytes first, so neither the
 * length nor the content of a key leaks through timing, and every configured key is compared every time.
 */
export class ApiKeySet {
  private readonly digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map(digest);
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /** The index of the matching key, or -1. */
  match(candidate: string): number {
    const d = digest(candidate);
    let found = -1;
    for (let i = 0; i < this.digests.length; i++) {
      if (timingSafeEqual(d, this.digests[i]) && found === -1) found = i;
    }
    return found;
  }
}

/** A stable, non-reversible id of a key for rate-limit buckets and logs (never the key itself). */
export function keyId(key: string): string {
  return digest(key).toString('hex').slice(0, 16);
}
