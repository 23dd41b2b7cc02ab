import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import type { CacheLogger } from '../cache.types';
import { DiskLMStore, DiskStoreUnavailableError, type DiskLMStoreOptions } from './disk-lm.store';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const run = promisify(execFile);

/**
 * A worker process writing to the shared file and reading the other worker's keys. It loads this TypeScript source
 * through @swc/core (what jest uses), so no build is needed.
 */
const WORKER = `
const fs = require('node:fs');
const { transformSync } = require('@swc/core');
require.extensions['.ts'] = (module, filename) => {
  const { code } = transformSync(fs.readFileSync(filename, 'utf8'), {
    filename, module: { type: 'commonjs' },
    jsc: { parser: { syntax: 'typescript', decorators: true }, target: 'es2022' },
  });
  module._compile(code, filename);
};
const { DiskLMStore } = require(process.env.STORE_MODULE);
const [dir, budget, id, other, count, startAt] = process.argv.slice(1);
// Both workers start writing at the same moment, so their writes interleave.
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.max(0, Number(startAt) - Date.now()));
const store = new DiskLMStore({ dir, maxBytes: Number(budget), logger: { log() {}, warn() {}, error() {} } });
let errors = 0, maxBytes = 0, seen = 0;
for (let i = 0; i < Number(count); i++) {
  try { store.set(id + '-' + i, JSON.stringify({ v: 'x'.repeat(300 + (i % 13) * 150) })); } catch (e) { errors++; }
  try { if (store.get(other + '-' + (i - 1)) !== undefined) seen++; } catch (e) { errors++; }
  if (i % 25 === 0) maxBytes = Math.max(maxBytes, store.stats().bytes);
}
// Each worker then waits for the other's "done" marker, rewriting its own so later writes cannot evict it.
let sawOtherLast = false;
for (const until = Date.now() + 20000; !sawOtherLast && Date.now() < until; ) {
  store.set('done-' + id, '1');
  sawOtherLast = store.get('done-' + other) !== undefined;
  if (!sawOtherLast) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
}
store.set('done-' + id, '1');
process.stdout.write(JSON.stringify({ errors, maxBytes, seen, sawOtherLast }));
store.close();
`;

/** Plain mock functions (not methods), so assertions can pass them around. */
type MockLogger = { [K in keyof CacheLogger]: jest.Mock };
function quietLogger(): MockLogger {
  return { log: jest.fn(), warn: jest.fn(), error: jest.fn() };
}

/** Reads the file with a connection of its own: the ground truth the store's accounting must match. */
function fileTotals(path: string): { entries: number; bytes: number; keys: string[] } {
  const db = new Database(path, { readonly: true });
  try {
    const row = db
      .prepare('SELECT count(*) AS entries, coalesce(sum(size), 0) AS bytes FROM entries')
      .get() as {
      entries: number;
      bytes: number;
    };
    const sizes = db.prepare('SELECT key, value, size FROM entries');
    for (const r of sizes.all() as { key: string; value: string; size: number }[]) {
      const expected = DiskLMStore.entrySize(r.key, r.value);
      if (r.size !== expected)
        throw new Error(`entry ${r.key} accounts ${r.size} bytes instead of ${expected}`);
    }
    const keys = (db.prepare('SELECT key FROM entries').all() as { key: string }[]).map((r) => r.key);
    return { ...row, keys };
  } finally {
    db.close();
  }
}

describe('DiskLMStore', () => {
  let dir: string;
  const stores: DiskLMStore[] = [];
  const open = (options: Partial<DiskLMStoreOptions> = {}) => {
    const store = new DiskLMStore({ dir, maxBytes: 1_000_000, logger: quietLogger(), ...options });
    stores.push(store);
    return store;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'disk-lm-store-'));
  });

  afterEach(() => {
    for (const store of stores.splice(0)) store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores, overwrites and deletes values', () => {
    const store = open();
    expect(store.get('k')).toBeUndefined();
    expect(store.set('k', '{"a":1}')).toBe(true);
    expect(store.get('k')).toBe('{"a":1}');
    expect(store.set('k', '{"a":22}')).toBe(true);
    expect(store.get('k')).toBe('{"a":22}');
    expect(store.stats()).toMatchObject({ entries: 1, bytes: 2 * 1 + 8 + 64 });
    expect(store.delete('k')).toBe(true);
    expect(store.get('k')).toBeUndefined();
    expect(store.stats()).toMatchObject({ entries: 0, bytes: 0 });
  });

  it('accounts UTF-8 bytes of keys (row and index) and values plus a row overhead', () => {
    const store = open();
    store.set('ключ', '"é€😀"');
    expect(DiskLMStore.entrySize('ключ', '"é€😀"')).toBe(2 * 8 + 11 + 64);
    expect(store.stats().bytes).toBe(2 * Buffer.byteLength('ключ') + Buffer.byteLength('"é€😀"') + 64);
    expect(fileTotals(store.path).bytes).toBe(store.stats().bytes);
  });

  it('starts with the six pages an empty cache needs (not counted against the budget)', () => {
    const store = open();
    store.close();
    const db = new Database(store.path, { readonly: true });
    const used =
      (db.pragma('page_count', { simple: true }) as number) -
      (db.pragma('freelist_count', { simple: true }) as number);
    db.close();
    expect(used).toBe(6);
  });

  it('persists across close and reopen, in WAL mode', () => {
    const first = open();
    first.set('persisted', '"yes"');
    first.close();
    const second = open();
    expect(second.get('persisted')).toBe('"yes"');
    const db = new Database(second.path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('never holds more than the byte budget while writing three times the budget', () => {
    const budget = 256 * 1024;
    const store = open({ maxBytes: budget });
    let written = 0;
    let largest = 0;
    let i = 0;
    const keys: string[] = [];
    while (written < 3 * budget) {
      const key = `key-${String(i).padStart(6, '0')}`;
      const value = JSON.stringify({ outputs: ['x'.repeat(200 + ((i * 7919) % 3000))], n: i });
      const size = DiskLMStore.entrySize(key, value);
      largest = Math.max(largest, size);
      expect(store.set(key, value)).toBe(true);
      keys.push(key);
      written += size;
      i += 1;
      const { bytes } = store.stats();
      expect(bytes).toBeLessThanOrEqual(budget + largest);
    }
    const truth = fileTotals(store.path);
    expect(truth.bytes).toBe(store.stats().bytes);
    expect(truth.entries).toBe(store.stats().entries);
    expect(truth.bytes).toBeLessThanOrEqual(budget);
    // Pages are never full, so the page bound keeps somewhat less than the budget in accounted bytes — not much less.
    expect(truth.bytes).toBeGreaterThan(budget * 0.6);
    // Least recently used went first: the newest entries are all there, the oldest are gone.
    expect(store.get(keys[keys.length - 1])).toBeDefined();
    expect(store.get(keys[0])).toBeUndefined();
    const openFileBytes = store.stats().fileBytes;
    store.close();
    const fileBytes = statSync(store.path).size;
    // Reported for the closing note: pages are not full, so the file runs somewhat above the accounted bytes.
    console.info(
      `disk budget ${budget} B; wrote ${written} B in ${i} entries; accounted ${truth.bytes} B in ${truth.entries}; ` +
        `file+WAL while open ${openFileBytes} B; file after close ${fileBytes} B`,
    );
    // The file: the budget, plus the pages of an empty cache, plus at most one entry (and its last partial page).
    const emptyFile = 6 * 4096;
    expect(fileBytes).toBeLessThanOrEqual(budget + emptyFile + largest + 4096);
    // While open, the WAL adds at most its checkpoint size (16 pages for a budget this small).
    expect(openFileBytes).toBeLessThanOrEqual(budget + emptyFile + largest + 4096 + 17 * 4096);
  });

  it('evicts the least recently used entry, counting reads as use', () => {
    const value = 'v'.repeat(90);
    const size = DiskLMStore.entrySize('a', value);
    const store = open({ maxBytes: 3 * size });
    store.set('a', value);
    store.set('b', value);
    store.set('c', value);
    expect(store.get('a')).toBe(value); // a is now more recent than b
    store.set('d', value);
    expect(store.get('b')).toBeUndefined();
    expect(store.get('a')).toBe(value);
    expect(store.get('c')).toBe(value);
    expect(store.get('d')).toBe(value);
    expect(store.stats()).toMatchObject({ entries: 3, bytes: 3 * size });
  });

  it('does not store an entry larger than the whole budget', () => {
    const store = open({ maxBytes: 200 });
    store.set('small', '"s"');
    expect(store.set('big', 'x'.repeat(200))).toBe(false);
    expect(store.get('big')).toBeUndefined();
    expect(store.get('small')).toBe('"s"');
  });

  it('expires entries after their TTL and purges them on later writes', async () => {
    const store = open({ ttlMs: 60 });
    store.set('short', '"1"');
    store.set('long', '"2"', 60_000);
    expect(store.get('short')).toBe('"1"');
    expect(store.has('short')).toBe(true);
    await sleep(100);
    expect(store.get('short')).toBeUndefined();
    expect(store.has('short')).toBe(false);
    expect(store.get('long')).toBe('"2"');
    store.set('other', '"3"', 0);
    expect(fileTotals(store.path).keys.sort()).toEqual(['long', 'other']);
  });

  it('moves a file that is not a database aside and starts empty', () => {
    const first = open();
    first.set('k', '"v"');
    first.close();
    const garbage = Buffer.from('this is not a sqlite file '.repeat(400));
    writeFileSync(first.path, garbage);
    const logger = quietLogger();
    const second = open({ logger });
    expect(second.isOpen).toBe(true);
    expect(second.get('k')).toBeUndefined();
    second.set('k2', '"v2"');
    expect(second.get('k2')).toBe('"v2"');
    const aside = readdirSync(dir).filter(
      (f) => f.startsWith('lm-cache.sqlite.corrupt-') && !/-(wal|journal)$/.test(f),
    );
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(dir, aside[0]))).toEqual(garbage);
    expect(logger.error).toHaveBeenCalledWith(expect.stringContaining('moved it to'));
  });

  it('finds damaged pages with the integrity check at open and rebuilds', () => {
    const first = open();
    for (let i = 0; i < 200; i++) first.set(`key-${i}`, JSON.stringify({ v: 'x'.repeat(500), i }));
    first.close();
    const bytes = readFileSync(first.path);
    // Keep the header page intact (the file still opens), scramble the table pages.
    for (let offset = 4096 * 2; offset < bytes.length; offset += 7)
      bytes[offset] = (bytes[offset] * 31 + 7) & 0xff;
    writeFileSync(first.path, bytes);
    const logger = quietLogger();
    const second = open({ logger });
    expect(second.isOpen).toBe(true);
    expect(second.stats().entries).toBe(0);
    expect(readdirSync(dir).some((f) => f.includes('.corrupt-'))).toBe(true);
    expect(logger.error).toHaveBeenCalled();
  });

  it('recovers from corruption found while serving (integrity check skipped for big files)', () => {
    const first = open();
    for (let i = 0; i < 200; i++) first.set(`key-${i}`, JSON.stringify({ v: 'x'.repeat(500), i }));
    first.close();
    // Damage only the table's leaf pages: the schema, meta row and indexes stay readable, so the file opens.
    const db = new Database(first.path, { readonly: true });
    const leaves = (
      db.prepare("SELECT pageno FROM dbstat WHERE name = 'entries' AND pagetype = 'leaf'").all() as {
        pageno: number;
      }[]
    ).map((r) => r.pageno);
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    db.close();
    expect(leaves.length).toBeGreaterThan(5);
    const bytes = readFileSync(first.path);
    for (const page of leaves) bytes.fill(0xa5, (page - 1) * pageSize, page * pageSize);
    writeFileSync(first.path, bytes);
    const logger = quietLogger();
    const second = open({ logger, integrityCheckMaxBytes: 0 });
    expect(second.isOpen).toBe(true);
    expect(() => second.get('key-5')).toThrow(/malformed|corrupt/i);
    // The failing read moved the file aside and reopened an empty one.
    expect(second.isOpen).toBe(true);
    expect(second.stats().entries).toBe(0);
    expect(second.get('key-5')).toBeUndefined();
    second.set('fresh', '"ok"');
    expect(second.get('fresh')).toBe('"ok"');
    expect(readdirSync(dir).some((f) => f.includes('.corrupt-'))).toBe(true);
    expect(logger.error).toHaveBeenCalledWith(expect.stringContaining('is corrupt'));
  });

  it('keeps at most two moved-aside files', () => {
    for (let round = 0; round < 4; round++) {
      const store = open();
      store.set('k', '"v"');
      store.close();
      writeFileSync(store.path, `garbage ${round} `.repeat(300));
    }
    open();
    const aside = readdirSync(dir).filter((f) => f.includes('.corrupt-') && !/-(wal|journal)$/.test(f));
    expect(aside).toHaveLength(2);
  });

  it('lets two instances on one file (two workers) see each other and share one budget', () => {
    const budget = 64 * 1024;
    const a = open({ maxBytes: budget });
    const b = open({ maxBytes: budget });
    a.set('from-a', '"A"');
    b.set('from-b', '"B"');
    expect(b.get('from-a')).toBe('"A"');
    expect(a.get('from-b')).toBe('"B"');
    const value = JSON.stringify('y'.repeat(1000));
    for (let i = 0; i < 200; i++) (i % 2 ? a : b).set(`shared-${i}`, value);
    expect(a.stats().bytes).toBe(b.stats().bytes);
    expect(fileTotals(a.path).bytes).toBeLessThanOrEqual(budget);
    expect(a.get('shared-199')).toBe(value);
    expect(b.get('shared-198')).toBe(value);
  });

  it('lets two worker processes write the file concurrently within one budget, without errors', async () => {
    const budget = 512 * 1024;
    const startAt = String(Date.now() + 2500);
    const worker = (id: string, other: string) =>
      run(process.execPath, ['-e', WORKER, dir, String(budget), id, other, '3000', startAt], {
        cwd: resolve(__dirname, '../../..'),
        env: { ...process.env, STORE_MODULE: resolve(__dirname, 'disk-lm.store.ts') },
        timeout: 60_000,
      });
    const [a, b] = await Promise.all([worker('a', 'b'), worker('b', 'a')]);
    const results = [a, b].map(
      ({ stdout }) =>
        JSON.parse(stdout) as { errors: number; maxBytes: number; seen: number; sawOtherLast: boolean },
    );
    for (const result of results) {
      expect(result).toMatchObject({ errors: 0, sawOtherLast: true });
      expect(result.maxBytes).toBeLessThanOrEqual(budget);
    }
    // While both ran, one read entries the other had just written (the one behind sees them, the one ahead not).
    expect(results[0].seen + results[1].seen).toBeGreaterThan(0);
    const truth = fileTotals(join(dir, 'lm-cache.sqlite'));
    expect(truth.bytes).toBeLessThanOrEqual(budget);
    expect(truth.entries).toBeGreaterThan(100);
    expect(truth.keys.every((k) => /^(done-)?[ab](-\d+)?$/.test(k))).toBe(true);
  }, 30_000);

  it('reopens a file that was removed under it', async () => {
    const store = open({ touchFlushMs: 20 });
    store.set('old', '"1"');
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${store.path}${suffix}`, { force: true });
    await sleep(100);
    expect(existsSync(store.path)).toBe(true);
    expect(store.get('old')).toBeUndefined();
    store.set('new', '"2"');
    const other = open();
    expect(other.get('new')).toBe('"2"');
  });

  it('serves nothing but never throws at construction when the directory is unusable', () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    const logger = quietLogger();
    const store = open({ dir: file, logger });
    expect(store.isOpen).toBe(false);
    expect(store.health()).toMatchObject({ status: 'down' });
    expect(() => store.get('k')).toThrow(DiskStoreUnavailableError);
    expect(logger.error).toHaveBeenCalledWith(expect.stringContaining('cannot be opened'));
  });

  it('rejects operations after close', () => {
    const store = open();
    store.close();
    store.close();
    expect(() => store.set('k', '"v"')).toThrow(DiskStoreUnavailableError);
    expect(store.health()).toMatchObject({ status: 'down', error: 'closed' });
  });
});
