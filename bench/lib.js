/** Shared plumbing of bench/run.js, bench/soak.js and bench/profile.js: child processes, IPC probes, load. */
'use strict';
const { fork } = require('node:child_process');
const net = require('node:net');
const http = require('node:http');
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const autocannon = require('autocannon');

const ROOT = path.join(__dirname, '..');
const PROBE = path.join(__dirname, 'heap-probe.js');
const RUN = randomUUID().slice(0, 8);

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

let nextId = 0;
/** Sends {type, id} over IPC and resolves with the first reply of the same type and id. */
function ask(child, type, extra = {}) {
  const id = ++nextId;
  return new Promise((resolve, reject) => {
    const onMessage = (msg) => {
      if (msg?.type === type && (msg.id === undefined || msg.id === id)) {
        child.off('message', onMessage);
        clearTimeout(timer);
        resolve(msg);
      }
    };
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      reject(new Error(`no '${type}' reply from pid ${child.pid}`));
    }, 30000);
    child.on('message', onMessage);
    child.send({ type, id, ...extra });
  });
}

/** CPU milliseconds (user + system) the child has used so far. */
async function cpuMs(child) {
  const c = await ask(child, 'cpu');
  return (c.user + c.system) / 1000;
}

async function startFake() {
  const child = fork(path.join(__dirname, 'fake-upstream.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`fake upstream exited (${code})`)));
  });
  return { child, url: ready.url };
}

/** The environment of every app under benchmark: no disk tier, quiet logs, no auth, no throttling. */
function benchEnv(extra) {
  return {
    ...process.env,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    WORKERS: '1',
    OPENAI_API_KEY: 'sk-bench',
    LOG_LEVEL: 'warn',
    CACHE_DISK_ENABLED: 'false',
    CACHE_MEMORY_ENABLED: 'true',
    REDIS_URL: '',
    API_KEYS: '',
    // No rate limit (RATE_LIMIT=0 is off); admission control (MAX_CONCURRENT_PREDICTIONS…) keeps its defaults.
    RATE_LIMIT: '0',
    ...extra,
  };
}

async function waitHttp(port, pathName, child) {
  const deadline = Date.now() + 30000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before listening`);
    const ok = await new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: pathName }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Forks a Node app with the bench preload; `execArgv` adds flags such as --expose-gc or --cpu-prof. */
async function startApp(script, { fakeUrl, execArgv = [], env = {} } = {}) {
  const port = await freePort();
  const child = fork(script, [], {
    cwd: ROOT,
    execArgv: [...execArgv, '-r', PROBE],
    env: benchEnv({ PORT: String(port), OPENAI_BASE_URL: fakeUrl, ...env }),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await waitHttp(port, '/health/live', child);
  return { child, port, url: `http://127.0.0.1:${port}` };
}

function stopChild(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      child.send({ type: 'exit' });
    } catch {
      child.kill('SIGTERM');
    }
  });
}

let counter = 0;
/** A question no cache has seen. */
function newQuestion(tag = 'q') {
  counter += 1;
  return `What is benchmark ${tag} number ${counter} of run ${RUN}?`;
}

const jsonHeaders = { 'content-type': 'application/json' };

/** One autocannon request spec: POST `path` with a body from `makeBody()` per request. */
function postSpec(pathName, makeBody) {
  return {
    method: 'POST',
    path: pathName,
    headers: jsonHeaders,
    setupRequest: (req) => ({ ...req, body: JSON.stringify(makeBody()) }),
  };
}

function cannon(opts) {
  return new Promise((resolve, reject) => {
    const instance = autocannon({ connections: 32, pipelining: 1, ...opts }, (err, result) =>
      err ? reject(err) : resolve(result),
    );
    instance.on('error', () => {});
  });
}

module.exports = {
  ROOT,
  RUN,
  ask,
  cpuMs,
  startFake,
  startApp,
  stopChild,
  newQuestion,
  postSpec,
  cannon,
  jsonHeaders,
};
