#!/usr/bin/env node
/**
 * The container's HEALTHCHECK: exit 0 when GET /health/live answers 200, 1 otherwise. Plain Node, no curl in the
 * image. Liveness only (never the LM or Redis), so an upstream outage does not mark the container unhealthy.
 *
 *   node scripts/healthcheck.js            # probes http://127.0.0.1:$PORT/health/live
 *   HEALTHCHECK_URL=http://… node scripts/healthcheck.js
 */
'use strict';

const http = require('node:http');

const TIMEOUT_MS = Number(process.env.HEALTHCHECK_TIMEOUT_MS) || 3000;

function probeUrl() {
  if (process.env.HEALTHCHECK_URL) return process.env.HEALTHCHECK_URL;
  const port = process.env.PORT || '8000';
  // A wildcard bind answers on loopback; a specific HOST only on itself.
  const host = process.env.HOST;
  const target =
    !host || host === '0.0.0.0'
      ? '127.0.0.1'
      : host === '::'
        ? '[::1]'
        : host.includes(':')
          ? `[${host}]`
          : host;
  return `http://${target}:${port}/health/live`;
}

const url = probeUrl();
const request = http.get(url, { timeout: TIMEOUT_MS }, (response) => {
  response.resume();
  const ok = response.statusCode === 200;
  if (!ok) process.stderr.write(`healthcheck: ${url} answered ${response.statusCode}\n`);
  process.exit(ok ? 0 : 1);
});
request.on('timeout', () => {
  process.stderr.write(`healthcheck: ${url} did not answer within ${TIMEOUT_MS} ms\n`);
  request.destroy();
  process.exit(1);
});
request.on('error', (error) => {
  process.stderr.write(`healthcheck: ${url}: ${error.message}\n`);
  process.exit(1);
});
