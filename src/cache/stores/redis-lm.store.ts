import { Logger } from '@nestjs/common';
import KeyvRedis, { createClient } from '@keyv/redis';
import type { KeyvStoreAdapter, StoredData } from 'keyv';
import { type CacheLogger, errorMessage, type TierHealth, type TierSize } from '../cache.types';
import { CacheTimeoutError, withTimeout } from '../with-timeout';

export interface RedisLMStoreOptions {
  /** `redis[s]://[[user][:password]@]host[:port][/db]` */
  url: string;
  /** Keys are `<namespace>:<key>`. */
  namespace?: string;
  /** TCP connect budget per attempt. */
  connectTimeoutMs?: number;
  /** The longest any command may take before the caller gets a miss (read) or a dropped write. */
  commandTimeoutMs?: number;
  /** Reconnect backoff ceiling; the client retries forever with 50 ms · 2^n up to this. */
  maxReconnectDelayMs?: number;
  /**
   * Consecutive timeouts on a "connected" client after which it is presumed frozen: its connection is dropped (so
   * the commands queued on it are released) and a new one is made, which stays "not ready" — every command failing
   * at once — until Redis answers again.
   */
  timeoutsBeforeReconnect?: number;
  /** How often `size()` may rescan the namespace. */
  sizeRefreshMs?: number;
  logger?: CacheLogger;
}

/** A node-redis client in non-blocking mode: while disconnected, commands fail at once instead of queueing. */
function newRedisClient(url: string, connectTimeoutMs: number, commandTimeoutMs: number, maxDelayMs: number) {
  return createClient({
    url,
    disableOfflineQueue: true,
    commandOptions: { timeout: commandTimeoutMs },
    socket: {
      connectTimeout: connectTimeoutMs,
      reconnectStrategy: (retries: number) =>
        Math.min(50 * 2 ** Math.min(retries, 10), maxDelayMs) + Math.floor(Math.random() * 50),
    },
  });
}

type RedisClient = ReturnType<typeof newRedisClient>;

/** Redis is not connected (down, unreachable, frozen and being reconnected, or the store was closed). */
export class RedisUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisUnavailableError';
  }
}

const SIZE_SCAN_COUNT = 1000;
const SIZE_SCAN_MAX_KEYS = 1_000_000;
/** SCAN walks the whole keyspace (other applications' keys too); stop after this many pages. */
const SIZE_SCAN_MAX_PAGES = 2000;
const SIZE_SAMPLE_KEYS = 200;

/**
 * The shared Redis tier as a Keyv storage adapter over `@keyv/redis`, in non-blocking mode:
 *
 * - the node-redis client runs with `disableOfflineQueue`, so while it is not connected every command fails at once
 *   instead of queueing, and it reconnects by itself forever with a capped backoff;
 * - every command is bounded by `commandTimeoutMs` here, because node-redis' own command timeout stops applying once
 *   a command is written to the socket — which is exactly what happens with a frozen (SIGSTOP) server;
 * - repeated timeouts on a "ready" client recycle the connection (see `timeoutsBeforeReconnect`);
 * - `close()` gives pending commands at most one command timeout, then destroys the socket: a dead or frozen Redis
 *   never holds up shutdown.
 *
 * Errors are thrown (never swallowed) so the tiered cache can count them; it turns them into misses.
 */
export class RedisLMStore implements KeyvStoreAdapter {
  readonly opts: { dialect: 'redis'; url: string };
  /** Keyv writes its namespace here; the key prefix is fixed by `options.namespace` instead. */
  namespace?: string;
  readonly keyPrefix: string;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;

  private readonly url: string;
  private readonly maxReconnectDelayMs: number;
  private readonly timeoutsBeforeReconnect: number;
  private readonly sizeRefreshMs: number;
  private readonly logger: CacheLogger;
  private readonly inner: KeyvRedis<string>;
  private client: RedisClient;
  private epoch = 0;
  private consecutiveTimeouts = 0;
  private closed = false;
  private closing: Promise<void> | null = null;
  private lastError: string | null = null;
  private wasReady = false;
  private lastSize: TierSize = { entries: null, bytes: null };
  private sizeCheckedAt = 0;
  private sizing = false;

  constructor(options: RedisLMStoreOptions) {
    this.url = options.url;
    const namespace = options.namespace ?? 'dspy:lm';
    this.keyPrefix = `${namespace}:`;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 500;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 100;
    this.maxReconnectDelayMs = options.maxReconnectDelayMs ?? 2000;
    this.timeoutsBeforeReconnect = options.timeoutsBeforeReconnect ?? 3;
    this.sizeRefreshMs = options.sizeRefreshMs ?? 30_000;
    this.logger = options.logger ?? new Logger('RedisLMStore');
    this.opts = { dialect: 'redis', url: redactUrl(this.url) };

    this.client = this.createClient();
    this.inner = new KeyvRedis<string>(this.client, {
      namespace,
      keyPrefixSeparator: ':',
      throwOnConnectError: false,
      throwOnErrors: true,
    });
    this.inner.on('error', (error: unknown) => this.noteError(error));
    this.connect(this.client);
  }

  /** Whether the client is connected and has finished its handshake. */
  get isReady(): boolean {
    return !this.closed && this.client.isReady;
  }

  async get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    return this.command('get', () => this.inner.get(key));
  }

  async getMany<Value>(keys: string[]): Promise<StoredData<Value | undefined>[]> {
    return this.command('getMany', () => this.inner.getMany(keys));
  }

  async set(key: string, value: unknown, ttl?: number): Promise<void> {
    if (typeof value !== 'string') throw new TypeError('RedisLMStore stores serialized strings only');
    await this.command('set', () => this.inner.set(key, value, ttl && ttl > 0 ? ttl : undefined));
  }

  async delete(key: string): Promise<boolean> {
    return this.command('delete', () => this.inner.delete(key));
  }

  async has(key: string): Promise<boolean> {
    return this.command('has', () => this.inner.has(key));
  }

  /** Deletes this namespace's keys only (SCAN + UNLINK): many round trips, so it gets 50 command timeouts. */
  async clear(): Promise<void> {
    await this.command('clear', () => this.inner.clear(), this.commandTimeoutMs * 50);
  }

  async disconnect(): Promise<void> {
    await this.close();
  }

  on(event: string, listener: (...args: any[]) => void): this {
    this.inner.on(event, listener);
    return this;
  }

  /**
   * Resolves true once connected, or false after `timeoutMs` (or on close) — for a boot that prefers to start with
   * the shared cache but must not wait on a dead Redis.
   */
  async waitUntilReady(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.isReady) {
      if (this.closed || Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(10, Math.max(1, deadline - Date.now()))));
    }
    return true;
  }

  /** Reachability for `/health`: a PING within the command timeout. Never throws. */
  async health(): Promise<TierHealth> {
    const details = { url: this.opts.url, connected: this.isReady };
    if (this.closed) return { status: 'down', ...details, error: 'closed' };
    if (!this.client.isReady) {
      return { status: 'down', ...details, error: this.lastError ?? 'not connected yet' };
    }
    const started = performance.now();
    try {
      await this.command('ping', () => this.client.ping());
      return { status: 'up', ...details, latencyMs: Math.round((performance.now() - started) * 10) / 10 };
    } catch (error: unknown) {
      return { status: 'down', ...details, error: errorMessage(error) };
    }
  }

  /**
   * Entries and bytes under the namespace as last measured; a new measurement (SCAN for the count, STRLEN of a
   * sample for the bytes, so bytes are an estimate) starts in the background when the last one is stale.
   */
  size(): TierSize {
    if (!this.sizing && this.isReady && Date.now() - this.sizeCheckedAt >= this.sizeRefreshMs) {
      this.sizing = true;
      this.sizeCheckedAt = Date.now();
      this.measureSize()
        .then((size) => {
          this.lastSize = size;
        })
        .catch((error: unknown) => this.noteError(error))
        .finally(() => {
          this.sizing = false;
        });
    }
    return this.lastSize;
  }

  /** Measures entries and (estimated) bytes now; each Redis call is bounded by the command timeout. */
  async measureSize(): Promise<TierSize> {
    let cursor = '0';
    let entries = 0;
    let pages = 0;
    const sample: string[] = [];
    do {
      pages += 1;
      const page = await this.command('scan', () =>
        this.client.scan(cursor, { MATCH: `${escapeGlob(this.keyPrefix)}*`, COUNT: SIZE_SCAN_COUNT }),
      );
      cursor = String(page.cursor);
      entries += page.keys.length;
      for (const key of page.keys) if (sample.length < SIZE_SAMPLE_KEYS) sample.push(key);
    } while (cursor !== '0' && entries < SIZE_SCAN_MAX_KEYS && pages < SIZE_SCAN_MAX_PAGES);
    if (sample.length === 0) return { entries, bytes: 0 };
    const lengths = await this.command('strlen', () => Promise.all(sample.map((k) => this.client.strLen(k))));
    const sampled = lengths.reduce((sum, n, i) => sum + n + Buffer.byteLength(sample[i]), 0);
    return { entries, bytes: Math.round((sampled / sample.length) * entries) };
  }

  /**
   * Gives in-flight commands at most one command timeout, then drops the connection. Idempotent, and bounded even
   * when Redis is frozen or gone.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ---------------------------------------------------------------------------------------------------------------

  private async shutdown(): Promise<void> {
    this.closed = true;
    const client = this.client;
    if (client.isReady) {
      try {
        await withTimeout(client.close(), this.commandTimeoutMs, 'Redis close');
      } catch {
        // Frozen or gone: destroy below.
      }
    }
    if (client.isOpen) client.destroy();
  }

  /**
   * Runs one operation if connected, within `timeoutMs`. Timeouts of single commands count towards presuming the
   * connection frozen; a slow multi-command operation (clear) does not.
   */
  private async command<T>(
    what: string,
    run: () => Promise<T>,
    timeoutMs = this.commandTimeoutMs,
  ): Promise<T> {
    if (this.closed) throw new RedisUnavailableError('the Redis cache is closed');
    if (!this.client.isReady) {
      throw new RedisUnavailableError(`Redis is not connected${this.lastError ? `: ${this.lastError}` : ''}`);
    }
    const epoch = this.epoch;
    try {
      const result = await withTimeout(run(), timeoutMs, `Redis ${what}`);
      if (epoch === this.epoch) this.consecutiveTimeouts = 0;
      return result;
    } catch (error: unknown) {
      const single = timeoutMs === this.commandTimeoutMs;
      if (error instanceof CacheTimeoutError && single && epoch === this.epoch && !this.closed) {
        this.consecutiveTimeouts += 1;
        if (this.consecutiveTimeouts >= this.timeoutsBeforeReconnect) this.recycle(error);
      }
      throw error;
    }
  }

  /** A "connected" client that stopped answering: replace its connection and release its queued commands. */
  private recycle(cause: Error): void {
    this.epoch += 1;
    this.consecutiveTimeouts = 0;
    this.noteError(cause);
    this.logger.warn(
      `Redis at ${this.opts.url} stopped answering (${cause.message}); reconnecting, serving from local tiers meanwhile`,
    );
    const old = this.client;
    this.client = this.createClient();
    this.inner.client = this.client;
    this.connect(this.client);
    old.destroy();
  }

  private createClient(): RedisClient {
    const client = newRedisClient(
      this.url,
      this.connectTimeoutMs,
      this.commandTimeoutMs,
      this.maxReconnectDelayMs,
    );
    client.on('error', (error: unknown) => this.noteError(error));
    client.on('ready', () => {
      if (client !== this.client) return;
      this.logger.log(`Redis cache connected at ${this.opts.url}`);
      this.wasReady = true;
      this.lastError = null;
    });
    return client;
  }

  private connect(client: RedisClient): void {
    client.connect().catch((error: unknown) => {
      // Only a destroy (close or recycle) ends the retry loop; anything else was already reported as an event.
      if (client === this.client && !this.closed) this.noteError(error);
    });
  }

  /** Remembers the last error and logs transitions (not every retry). */
  private noteError(error: unknown): void {
    const message = errorMessage(error);
    const first = this.lastError === null;
    this.lastError = message;
    if (first && !this.closed) {
      this.logger.warn(
        this.wasReady
          ? `Redis cache at ${this.opts.url} failed: ${message}; serving from local tiers and reconnecting`
          : `Redis cache at ${this.opts.url} is not reachable yet: ${message}; retrying in the background`,
      );
    }
  }
}

function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
