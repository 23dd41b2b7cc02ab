#!/usr/bin/env node
/**
 * The Docker build context as `docker build` would send it: every file under a directory except what
 * `.dockerignore` excludes, with Docker's matching rules (moby/patternmatcher): patterns are relative to the context
 * root (a leading `/` is dropped), `*` and `?` stay within one path segment, `**` spans any number of segments, a
 * pattern that matches a directory excludes everything below it, `!` re-includes, and the last matching line wins.
 *
 *   node scripts/docker-context.js SRC DEST    # copies SRC's context into DEST (which must not exist)
 *   node scripts/docker-context.js SRC         # lists the context, one path per line
 *
 * Used by scripts/build-like-image.sh and by the deploy checks under test/deploy/.
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');

/** One `.dockerignore` line as a matcher. */
function compilePattern(line) {
  let pattern = line;
  const exclusion = pattern.startsWith('!');
  if (exclusion) pattern = pattern.slice(1).trim();
  pattern = path.posix.normalize(pattern).replace(/^\/+/, '').replace(/\/+$/, '');
  let regex = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i += 1;
        if (pattern[i + 1] === '/') i += 1;
        regex += i + 1 >= pattern.length ? '.*' : '(.*/)?';
      } else {
        regex += '[^/]*';
      }
    } else if (ch === '?') {
      regex += '[^/]';
    } else if (ch === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) throw new Error(`.dockerignore: unterminated [ in ${JSON.stringify(line)}`);
      const body = pattern
        .slice(i + 1, end)
        .replace(/^!/, '^')
        .replace(/\\/g, '\\\\');
      regex += `[${body}]`;
      i = end;
    } else if (ch === '\\' && i + 1 < pattern.length) {
      i += 1;
      regex += pattern[i].replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else {
      regex += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    }
  }
  return { source: line, exclusion, regex: new RegExp(`^${regex}$`) };
}

/** The patterns of `dir/.dockerignore` (none when the file is absent). */
function readDockerignore(dir) {
  const file = path.join(dir, '.dockerignore');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map(compilePattern);
}

/** Whether a context-relative path (forward slashes) is left out: the last pattern matching it or a parent wins. */
function isExcluded(patterns, relPath) {
  const parts = relPath.split('/').filter(Boolean);
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let excluded = false;
  for (const p of patterns) {
    if (candidates.some((c) => p.regex.test(c))) excluded = !p.exclusion;
  }
  return excluded;
}

/** Every file of the context, relative to `root`, sorted. */
function listContext(root, patterns = readDockerignore(root)) {
  const hasExceptions = patterns.some((p) => p.exclusion);
  const files = [];
  const walk = (rel) => {
    for (const entry of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      const excluded = isExcluded(patterns, child);
      if (entry.isDirectory()) {
        // An excluded directory can only hold included files when some `!` line re-includes them.
        if (!excluded || hasExceptions) walk(child);
      } else if (!excluded && (entry.isFile() || entry.isSymbolicLink())) {
        files.push(child);
      }
    }
  };
  walk('');
  return files.sort();
}

function copyContext(src, dest) {
  if (fs.existsSync(dest)) throw new Error(`${dest} already exists`);
  for (const rel of listContext(src)) {
    const from = path.join(src, rel);
    const to = path.join(dest, rel);
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.cpSync(from, to, { verbatimSymlinks: true });
  }
}

module.exports = { compilePattern, readDockerignore, isExcluded, listContext, copyContext };

if (require.main === module) {
  const [src, dest] = process.argv.slice(2);
  if (!src) {
    process.stderr.write('usage: docker-context.js SRC [DEST]\n');
    process.exit(2);
  }
  if (dest) copyContext(path.resolve(src), path.resolve(dest));
  else
    process.stdout.write(
      listContext(path.resolve(src))
        .map((f) => `${f}\n`)
        .join(''),
    );
}
