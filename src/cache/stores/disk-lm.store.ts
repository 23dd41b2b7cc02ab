import { mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Logger } from '@nestjs/common';
import Database from 'better-sqlite3';
import type { KeyvStoreAdapter, StoredData } from 'keyv';
import { type CacheLogger, errorMessage, type TierHealth } from '../cache.types';

export interface DiskLMStoreOptions {
  /** Directory of the SQLite file; created when missing. */
  dir: string;
  /** Byte budget: for the accounted bytes ({@link DiskLMStore.entrySize}) and for the file pages holding data. */
  maxBytes: number;
  fileName?: string;
  /** Default time to live in ms for writes that do not pass one; 0 or undefined keeps entries until evicted. */
  ttlMs?: number;
  /**
   * How long a write waits for another process' write lock. better-sqlite3 waits synchronously, so this is time
   * the event loop may stall in the worst case; writes are sub-millisecond, so a short wait suffices.
   */
  busyTimeoutMs?: number;
  /** Access times of reads are batched and written at most this often (and before every write). */
  touchFlushMs?: number;
  /** `PRAGMA quick_check` at open when the file is at most this large (it reads the whole file). */
  integrityCheckMaxBytes?: number;
  /** At startup, how long to retry a file other workers keep busy (the constructor blocks meanwhile). */
  openWaitMs?: number;
  /** After the file could not be opened, the next attempt waits this long. */
  reopenIntervalMs?: number;
  /** Moved-aside corrupt files kept for inspection; older ones are deleted. */
  keepCorruptFiles?: number;
  logger?: CacheLogger;
}

export interface DiskStoreStats {
  entries: number;
  /** Accounted bytes: {@link DiskLMStore.entrySize} summed over the entries. */
  bytes: number;
  maxBytes: number;
  /** The SQLite file plus its WAL on disk. */
  fileBytes: number;
}

/** The store cannot serve: its file could not be opened (yet), or it was closed. */
export class DiskStoreUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DiskStoreUnavailableError';
  }
}

const SCHEMA_VERSION = 1;
/**
 * Per-entry storage SQLite needs beyond the key and value: the row header with rowid, size, atime and expires, the
 * atime index entry and cell pointers (measured with `dbstat`: 50–70 bytes).
 */
const ENTRY_OVERHEAD_BYTES = 64;
/** Pages of an empty cache file: schema, the two tables and three indexes. */
const BASE_PAGES = 6;
const MAX_PENDING_TOUCHES = 10_000;
const EXPIRED_PURGE_BATCH = 64;
const EVICTION_BATCH = 256;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    size INTEGER NOT NULL,
    atime REAL NOT NULL,
    expires INTEGER
  );
  CREATE INDEX IF NOT EXISTS entries_atime ON entries (atime);
  CREATE INDEX IF NOT EXISTS entries_expires ON entries (expires) WHERE expires IS NOT NULL;
  CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    entries INTEGER NOT NULL,
    bytes INTEGER NOT NULL
  );
  INSERT OR IGNORE INTO meta (id, entries, bytes) VALUES (0, 0, 0);
  CREATE TRIGGER IF NOT EXISTS entries_insert AFTER INSERT ON entries BEGIN
    UPDATE meta SET entries = entries + 1, bytes = bytes + NEW.size WHERE id = 0;
  END;
  CREATE TRIGGER IF NOT EXISTS entries_delete AFTER DELETE ON entries BEGIN
    UPDATE meta SET entries = entries - 1, bytes = bytes - OLD.size WHERE id = 0;
  END;
  CREATE TRIGGER IF NOT EXISTS entries_resize AFTER UPDATE OF size ON entries BEGIN
    UPDATE meta SET bytes = bytes - OLD.size + NEW.size WHERE id = 0;
  END;
`;

/** A wall-clock time in ms with sub-ms resolution, so accesses within one millisecond still order. */
const accessTime = (): number => performance.timeOrigin + performance.now();

/** The file is a database, but not one of ours (another schema, another application). */
class IncompatibleFileError extends Error {
  override name = 'IncompatibleFileError';
}

/** Damage that rebuilding fixes; busy, permission, I/O and disk-full errors are not (rebuilding would lose data). */
const isCorruption = (error: unknown): boolean =>
  error instanceof IncompatibleFileError || /^SQLITE_(CORRUPT|NOTADB)/.test(sqliteCode(error));

/**
 * The SQLite result code of an error. Not `instanceof`: the native addon keeps the `SqliteError` class of the realm
 * that loaded it first (jest loads modules once per test file), so its errors may come from another realm.
 */
function sqliteCode(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : '';
}

interface Statements {
  get: Database.Statement<[string], { value: string; expires: number | null }>;
  has: Database.Statement<[string, number], { one: number }>;
  upsert: Database.Statement<[string, string, number, number, number | null]>;
  delete: Database.Statement<[string]>;
  touch: Database.Statement<[number, string, number]>;
  purgeExpired: Database.Statement<[number]>;
  oldest: Database.Statement<[], { key: string; size: number }>;
  meta: Database.Statement<[], { entries: number; bytes: number }>;
  clear: Database.Statement<[]>;
}

/**
 * An embedded, persistent, size-bounded key-value store for the LM cache: one SQLite file in WAL mode, so several
 * worker processes can share it (readers never block; writers take turns under `busy_timeout`).
 *
 * - Each write is one `BEGIN IMMEDIATE` transaction: upsert, purge of a few expired rows, and eviction of the least
 *   recently used rows until both the accounted bytes ({@link DiskLMStore.entrySize}) and the file pages holding
 *   data are within `maxBytes` again. The totals live in a `meta` row kept by triggers inside the same transactions,
 *   so every process sees one consistent total, and no committed write leaves the cache over budget. The file
 *   itself stays within the budget plus the ~24 KB of an empty cache plus one entry. While open, the WAL adds 1/32
 *   of the budget (64 KB to 4 MB) between checkpoints; it can grow past that while other workers hold long reads,
 *   and is truncated back after the next checkpoint. A value larger than the whole budget is not stored.
 * - Reads never write: their access times are batched and flushed before the next write (which is when eviction
 *   needs them) or by a timer, and a flush that finds the lock taken is retried later instead of waiting.
 * - A file that is not a database, is corrupt or has an unknown schema is renamed `<file>.corrupt-<timestamp>` (WAL
 *   included) and rebuilt empty, at open or when a later operation reports corruption. A file another process
 *   replaced is reopened. A file that cannot be opened at all (permissions, disk) leaves the store unavailable —
 *   operations throw {@link DiskStoreUnavailableError} — and it retries every `reopenIntervalMs`. The constructor
 *   never throws for a file problem, so a bad cache directory cannot crash-loop the service.
 */
export class DiskLMStore {
  readonly path: string;
  readonly maxBytes: number;
  private readonly ttlMs: number;
  private readonly busyTimeoutMs: number;
  private readonly integrityCheckMaxBytes: number;
  private readonly reopenIntervalMs: number;
  private readonly keepCorruptFiles: number;
  private readonly logger: CacheLogger;

  private db: Database.Database | null = null;
  private stmts: Statements | null = null;
  private inode: number | null = null;
  private pageSize = 4096;
  private closed = false;
  private lastOpenAttempt = 0;
  private lastRecovery = 0;
  private unavailableReason: string | null = null;
  private readonly pendingTouches = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(options: DiskLMStoreOptions) {
    if (!Number.isFinite(options.maxBytes) || options.maxBytes <= 0) {
      throw new RangeError('maxBytes must be a positive number');
    }
    this.path = join(options.dir, options.fileName ?? 'lm-cache.sqlite');
    this.maxBytes = options.maxBytes;
    this.ttlMs = options.ttlMs ?? 0;
    this.busyTimeoutMs = options.busyTimeoutMs ?? 250;
    this.integrityCheckMaxBytes = options.integrityCheckMaxBytes ?? 64 * 1024 * 1024;
    this.reopenIntervalMs = options.reopenIntervalMs ?? 30_000;
    this.keepCorruptFiles = options.keepCorruptFiles ?? 2;
    this.logger = options.logger ?? new Logger('DiskLMStore');
    this.tryOpen(options.openWaitMs ?? 2000);
    this.timer = setInterval(() => this.maintain(), options.touchFlushMs ?? 1000);
    this.timer.unref();
  }

  /**
   * What one entry counts against the budget: close to what it occupies in the file — its value, its key twice
   * (the row and the primary-key index) and the row's fixed overhead. Pages are never full, so eviction also bounds
   * the pages in use, and a full cache holds somewhat fewer accounted bytes than the budget (70–95% measured).
   */
  static entrySize(key: string, value: string): number {
    return 2 * Buffer.byteLength(key) + Buffer.byteLength(value) + ENTRY_OVERHEAD_BYTES;
  }

  /** Whether the file is open and serving. */
  get isOpen(): boolean {
    return this.db !== null;
  }

  health(): TierHealth {
    if (this.db) return { status: 'up', path: this.path };
    return { status: 'down', path: this.path, error: this.unavailableReason ?? 'closed' };
  }

  /** The stored value, or undefined when absent or expired. */
  get(key: string): string | undefined {
    return this.run((s) => {
      const row = s.get.get(key);
      if (!row) return undefined;
      const now = Date.now();
      if (row.expires !== null && row.expires <= now) return undefined;
      if (this.pendingTouches.size < MAX_PENDING_TOUCHES || this.pendingTouches.has(key)) {
        this.pendingTouches.set(key, accessTime());
      }
      return row.value;
    });
  }

  has(key: string): boolean {
    return this.run((s) => s.has.get(key, Date.now()) !== undefined);
  }

  /**
   * Stores a value in one transaction and evicts the least recently used entries beyond the budget. Returns false
   * when the entry alone exceeds the budget (it is not stored).
   */
  set(key: string, value: string, ttlMs?: number): boolean {
    const size = DiskLMStore.entrySize(key, value);
    if (size > this.maxBytes) return false;
    const ttl = ttlMs ?? this.ttlMs;
    const expires = ttl > 0 ? Date.now() + ttl : null;
    this.run((s, db) => {
      db.transaction(() => {
        this.applyTouches(s);
        s.purgeExpired.run(Date.now());
        s.upsert.run(key, value, size, accessTime(), expires);
        this.evict(s, db, key);
      }).immediate();
    });
    return true;
  }

  delete(key: string): boolean {
    return this.run((s) => s.delete.run(key).changes > 0);
  }

  clear(): void {
    this.run((s) => {
      s.clear.run();
      this.pendingTouches.clear();
    });
  }

  stats(): DiskStoreStats {
    return this.run((s) => {
      const meta = s.meta.get() ?? { entries: 0, bytes: 0 };
      return {
        entries: meta.entries,
        bytes: meta.bytes,
        maxBytes: this.maxBytes,
        fileBytes: this.fileBytes(),
      };
    });
  }

  /** Flushes pending access times and closes the file. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    if (this.stmts) {
      try {
        this.flushTouches();
      } catch {
        // Access times are a hint for eviction; losing the last second of them is harmless.
      }
    }
    this.closeDb();
    this.unavailableReason = 'closed';
  }

  // ---------------------------------------------------------------------------------------------------------------

  /** Runs an operation on the open file, recovering from corruption (the operation itself still fails). */
  private run<T>(op: (s: Statements, db: Database.Database) => T): T {
    if (this.closed) throw new DiskStoreUnavailableError('the disk cache is closed');
    if (!this.db && Date.now() - this.lastOpenAttempt >= this.reopenIntervalMs) this.tryOpen();
    const db = this.db;
    const stmts = this.stmts;
    if (!db || !stmts) {
      throw new DiskStoreUnavailableError(
        `the disk cache is unavailable: ${this.unavailableReason ?? 'not open'}`,
      );
    }
    try {
      return op(stmts, db);
    } catch (error: unknown) {
      if (isCorruption(error)) this.recoverFromCorruption(error);
      throw error;
    }
  }

  /**
   * Evicts least recently used entries (never `keep`, the one just written) until both the accounted bytes and the
   * pages the data occupies in the file are within the budget. Page usage is the real footprint (pages are never
   * full); the pages an empty cache needs for its tables and indexes are not counted against the budget.
   */
  private evict(s: Statements, db: Database.Database, keep: string): void {
    for (;;) {
      const accountedExcess = (s.meta.get()?.bytes ?? 0) - this.maxBytes;
      const pageExcess = (this.pagesInUse(db) - BASE_PAGES) * this.pageSize - this.maxBytes;
      let excess = Math.max(accountedExcess, pageExcess);
      if (excess <= 0) return;
      const victims: string[] = [];
      for (const row of s.oldest.iterate()) {
        if (row.key === keep) continue;
        victims.push(row.key);
        excess -= row.size;
        if (excess <= 0 || victims.length >= EVICTION_BATCH) break;
      }
      if (victims.length === 0) return;
      for (const key of victims) s.delete.run(key);
    }
  }

  private pagesInUse(db: Database.Database): number {
    const pages = db.pragma('page_count', { simple: true }) as number;
    const free = db.pragma('freelist_count', { simple: true }) as number;
    return pages - free;
  }

  private applyTouches(s: Statements): void {
    for (const [key, atime] of this.pendingTouches) s.touch.run(atime, key, atime);
    this.pendingTouches.clear();
  }

  /** Writes batched access times without waiting for another process' lock: a busy file is retried next time. */
  private flushTouches(): void {
    const db = this.db;
    const stmts = this.stmts;
    if (!db || !stmts || this.pendingTouches.size === 0) return;
    db.pragma('busy_timeout = 0');
    try {
      db.transaction(() => this.applyTouches(stmts)).immediate();
    } catch (error: unknown) {
      if (sqliteCode(error) !== 'SQLITE_BUSY') throw error;
    } finally {
      db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
    }
  }

  /** Timer: flush access times; reopen when another process replaced the file or the store is unavailable. */
  private maintain(): void {
    if (this.closed) return;
    try {
      if (!this.db) {
        if (Date.now() - this.lastOpenAttempt >= this.reopenIntervalMs) this.tryOpen();
        return;
      }
      if (this.currentInode() !== this.inode) {
        this.logger.warn(`Disk cache file ${this.path} was replaced or removed; reopening it`);
        this.closeDb();
        this.tryOpen();
        return;
      }
      this.flushTouches();
    } catch (error: unknown) {
      if (isCorruption(error)) this.recoverFromCorruption(error);
      else this.logger.warn(`Disk cache maintenance failed: ${errorMessage(error)}`);
    }
  }

  /**
   * Opens the file, rebuilding it when corrupt. Workers starting together contend for the first schema write and the
   * switch to WAL (which SQLite reports as busy without waiting), so a busy file is retried for up to `maxWaitMs`.
   */
  private tryOpen(maxWaitMs = this.busyTimeoutMs): void {
    this.lastOpenAttempt = Date.now();
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      const deadline = Date.now() + maxWaitMs;
      for (let attempt = 0; ; attempt++) {
        try {
          this.openOrRebuild();
          break;
        } catch (error: unknown) {
          if (!/^SQLITE_(BUSY|LOCKED)/.test(sqliteCode(error)) || Date.now() >= deadline) throw error;
          sleepSync(Math.min(10 * 2 ** attempt, 100, Math.max(1, deadline - Date.now())));
        }
      }
      this.unavailableReason = null;
    } catch (error: unknown) {
      this.closeDb();
      this.unavailableReason = errorMessage(error);
      this.logger.error(
        `Disk cache ${this.path} cannot be opened (${this.unavailableReason}); serving without it, retrying in ${
          this.reopenIntervalMs
        } ms`,
      );
    }
  }

  private openOrRebuild(): void {
    try {
      this.openDb();
    } catch (error: unknown) {
      if (!isCorruption(error)) throw error;
      const aside = this.moveAside();
      this.logger.error(
        `Disk cache file ${this.path} is unreadable (${errorMessage(error)}); moved it to ${aside} and started empty`,
      );
      this.openDb();
    }
  }

  private openDb(): void {
    let db: Database.Database | null = null;
    try {
      db = new Database(this.path, { timeout: this.busyTimeoutMs });
      this.inode = this.currentInode();
      // WAL lets readers in every worker run while one writes; NORMAL sync is durable across process crashes
      // (a power cut may lose the last writes, never the file).
      // Switching needs the file to itself; it is persistent, so only the first opener of a new file does it.
      if (db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      // The WAL is disk the budget does not see: checkpoint it after ~1/32 of the budget (SQLite's default of 1000
      // pages, 4 MB, at most) and truncate it back to that size afterwards.
      this.pageSize = db.pragma('page_size', { simple: true }) as number;
      const walPages = Math.max(16, Math.min(1000, Math.floor(this.maxBytes / this.pageSize / 32)));
      db.pragma(`wal_autocheckpoint = ${walPages}`);
      db.pragma(`journal_size_limit = ${walPages * this.pageSize}`);
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version === 0) {
        const foreign = db
          .prepare(
            "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name NOT IN ('entries', 'meta')",
          )
          .get() as { n: number };
        if (foreign.n > 0) throw new IncompatibleFileError('the file holds tables of another application');
      } else if (version !== SCHEMA_VERSION) {
        throw new IncompatibleFileError(`unknown cache schema version ${version}`);
      }
      const size = this.fileBytes();
      if (size > 0 && size <= this.integrityCheckMaxBytes) {
        const result = db.pragma('quick_check', { simple: true });
        if (result !== 'ok') throw new IncompatibleFileError(`integrity check failed: ${String(result)}`);
      }
      db.transaction(() => {
        db!.exec(SCHEMA);
        db!.pragma(`user_version = ${SCHEMA_VERSION}`);
      }).immediate();
      this.stmts = prepare(db);
      this.db = db;
    } catch (error: unknown) {
      db?.close();
      throw error;
    }
  }

  private closeDb(): void {
    const db = this.db;
    this.db = null;
    this.stmts = null;
    this.pendingTouches.clear();
    try {
      db?.close();
    } catch {
      // A corrupt file may fail to checkpoint on close; it is being abandoned anyway.
    }
  }

  /** Corruption found while serving: move the file aside and start over, at most once per reopen interval. */
  private recoverFromCorruption(error: unknown): void {
    this.closeDb();
    if (Date.now() - this.lastRecovery < this.reopenIntervalMs) {
      this.unavailableReason = `corrupt again shortly after a rebuild: ${errorMessage(error)}`;
      this.lastOpenAttempt = Date.now();
      this.logger.error(`Disk cache ${this.path}: ${this.unavailableReason}; serving without it for now`);
      return;
    }
    this.lastRecovery = Date.now();
    try {
      const aside = this.moveAside();
      this.logger.error(
        `Disk cache file ${this.path} is corrupt (${errorMessage(error)}); moved it to ${aside} and started empty`,
      );
    } catch (moveError: unknown) {
      this.logger.error(
        `Disk cache file ${this.path} is corrupt and cannot be moved: ${errorMessage(moveError)}`,
      );
    }
    this.tryOpen();
  }

  /**
   * Renames the file and its WAL to `<file>.corrupt-<timestamp>[-wal]` and drops the shared-memory index. When
   * another worker already replaced the file (its inode changed), the new file is left alone.
   */
  private moveAside(): string {
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const aside = `${this.path}.corrupt-${stamp}`;
    const inode = this.currentInode();
    if (this.inode !== null && inode !== null && inode !== this.inode) {
      return '(already replaced by another process)';
    }
    if (inode !== null) renameSync(this.path, aside);
    for (const [suffix, keep] of [
      ['-wal', true],
      ['-shm', false],
      ['-journal', true],
    ] as const) {
      const file = `${this.path}${suffix}`;
      try {
        if (keep) renameSync(file, `${aside}${suffix}`);
        else rmSync(file);
      } catch {
        // Absent: nothing to move.
      }
    }
    this.inode = null;
    this.pruneCorruptFiles();
    return aside;
  }

  private pruneCorruptFiles(): void {
    const dir = dirname(this.path);
    const prefix = `${basename(this.path)}.corrupt-`;
    try {
      const stamps = [
        ...new Set(
          readdirSync(dir)
            .filter((f) => f.startsWith(prefix))
            .map((f) => f.slice(prefix.length).replace(/-(wal|journal)$/, '')),
        ),
      ].sort();
      for (const stamp of stamps.slice(0, Math.max(0, stamps.length - this.keepCorruptFiles))) {
        for (const suffix of ['', '-wal', '-journal'])
          rmSync(join(dir, `${prefix}${stamp}${suffix}`), { force: true });
      }
    } catch (error: unknown) {
      this.logger.warn(`Could not prune old corrupt cache files in ${dir}: ${errorMessage(error)}`);
    }
  }

  private currentInode(): number | null {
    try {
      return statSync(this.path).ino;
    } catch {
      return null;
    }
  }

  private fileBytes(): number {
    let total = 0;
    for (const file of [this.path, `${this.path}-wal`]) {
      try {
        total += statSync(file).size;
      } catch {
        // No WAL yet.
      }
    }
    return total;
  }
}

/** Blocks the thread: only while opening, when workers contend for a brand-new file. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function prepare(db: Database.Database): Statements {
  return {
    get: db.prepare<[string], { value: string; expires: number | null }>(
      'SELECT value, expires FROM entries WHERE key = ?',
    ),
    has: db.prepare<[string, number], { one: number }>(
      'SELECT 1 AS one FROM entries WHERE key = ? AND (expires IS NULL OR expires > ?)',
    ),
    upsert: db.prepare<[string, string, number, number, number | null]>(
      `INSERT INTO entries (key, value, size, atime, expires) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, size = excluded.size, atime = excluded.atime,
         expires = excluded.expires`,
    ),
    delete: db.prepare<[string]>('DELETE FROM entries WHERE key = ?'),
    touch: db.prepare<[number, string, number]>('UPDATE entries SET atime = ? WHERE key = ? AND atime < ?'),
    purgeExpired: db.prepare<[number]>(
      `DELETE FROM entries WHERE rowid IN (
         SELECT rowid FROM entries WHERE expires IS NOT NULL AND expires <= ? LIMIT ${EXPIRED_PURGE_BATCH})`,
    ),
    oldest: db.prepare<[], { key: string; size: number }>('SELECT key, size FROM entries ORDER BY atime ASC'),
    meta: db.prepare<[], { entries: number; bytes: number }>('SELECT entries, bytes FROM meta WHERE id = 0'),
    clear: db.prepare<[]>('DELETE FROM entries'),
  };
}

/**
 * The disk store as a Keyv storage adapter, so `@nestjs/cache-manager` can hold it among its Keyv stores. Keyv hands
 * it serialized strings (`{"value":…,"expires":…}`) and the TTL in ms.
 */
export class KeyvDiskStore implements KeyvStoreAdapter {
  readonly opts: { dialect: 'sqlite'; url: string };
  namespace?: string;

  constructor(readonly disk: DiskLMStore) {
    this.opts = { dialect: 'sqlite', url: `sqlite://${disk.path}` };
  }

  async get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    return this.disk.get(key) as StoredData<Value> | undefined;
  }

  async getMany<Value>(keys: string[]): Promise<StoredData<Value | undefined>[]> {
    return keys.map((key) => this.disk.get(key) as StoredData<Value | undefined>);
  }

  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    if (typeof value !== 'string') throw new TypeError('KeyvDiskStore stores serialized strings only');
    return this.disk.set(key, value, ttl);
  }

  async delete(key: string): Promise<boolean> {
    return this.disk.delete(key);
  }

  async has(key: string): Promise<boolean> {
    return this.disk.has(key);
  }

  async clear(): Promise<void> {
    this.disk.clear();
  }

  async disconnect(): Promise<void> {
    this.disk.close();
  }

  /** Keyv subscribes to `error`; this adapter throws instead of emitting. */
  on(_event: string, _listener: (...args: any[]) => void): this {
    return this;
  }
}
