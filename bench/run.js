#!/usr/bin/env node
/**
 * `npm run bench`: every scenario in one run, against the fake OpenAI upstream at zero latency (a forked child).
 *
 *   floor: constant  a bare NestJS route returning a constant            (bench/floor-app.js)
 *   floor: upstream  a bare NestJS route making one `openai` SDK call    (bench/floor-app.js)
 *   predict miss     POST /predict, every question new
 *   predict hit      POST /predict, one question answered from the memory tier
 *   stream           POST /predict/stream, every question new, whole stream
 *   stream TTFT      100 concurrent streams; time from the upstream writing the first content of the `answer`
 *                    field to our client reading the first `token` event (both stamped with
 *                    performance.timeOrigin + performance.now(), comparable across processes). Measured with the
 *                    upstream paced like a model (BENCH_STREAM_PACE_MS, 20 ms before each token: 100 open streams)
 *                    and at zero latency (100 clients saturating the CPU: queueing, not per-token cost), and
 *                    at 10 and 1 concurrent streams.
 *   batch of 8       POST /batch with 8 new questions
 *
 * CPU per request is the app process's own process.cpuUsage() delta over the measured window (asked over IPC by
 * the bench-only preload bench/heap-probe.js) divided by the completed requests. Each scenario gets WARMUP_S of
 * unmeasured load, then DURATION_S measured. Results go to stdout and into BENCHMARKS.md (between the markers).
 *
 * Env: BENCH_DURATION_S (8), BENCH_WARMUP_S (2), BENCH_CONNECTIONS (32), BENCH_STREAMS (100),
 * BENCH_STREAM_PACE_MS (20).
 */
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const { performance } = require('node:perf_hooks');
const { ROOT, ask, cpuMs, startFake, startApp, stopChild, newQuestion, postSpec, cannon } = require('./lib');

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 8);
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const STREAMS = Number(process.env.BENCH_STREAMS ?? 100);
// A model streaming ~50 tokens/s: 100 streams are then 100 open streams, not 100 clients saturating both cores.
const PACE_MS = Number(process.env.BENCH_STREAM_PACE_MS ?? 20);
const APP = path.join(ROOT, 'dist', 'main.js');
const FLOOR = path.join(__dirname, 'floor-app.js');
const HIT_QUESTION = 'What is the benchmark cache hit question?';

function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Warm-up, then a measured autocannon run with the app's CPU delta. */
async function measure(name, app, requests, { connections = CONNECTIONS, itemsPerRequest = 1 } = {}) {
  process.stdout.write(`  ${name}… `);
  await cannon({ url: app.url, requests, duration: WARMUP_S, connections });
  const cpu0 = await cpuMs(app.child);
  const result = await cannon({ url: app.url, requests, duration: DURATION_S, connections });
  const cpu1 = await cpuMs(app.child);
  const ok = result['2xx'];
  const row = {
    name,
    reqs: ok / DURATION_S,
    p50: result.latency.p50,
    p99: result.latency.p99,
    cpu: (cpu1 - cpu0) / Math.max(1, ok),
    errors: result.non2xx + result.errors + result.timeouts,
    itemsPerRequest,
  };
  console.log(`${row.reqs.toFixed(0)} req/s, p99 ${row.p99} ms, ${row.cpu.toFixed(3)} CPU ms/req` +
    (row.errors ? `, ${row.errors} errors` : ''));
  return row;
}

/** One POST /predict/stream: resolves with first-token and end times (epoch ms, high resolution). */
function streamOnce(agent, port, question) {
  const now = () => performance.timeOrigin + performance.now();
  return new Promise((resolve) => {
    const start = now();
    let firstToken = null;
    let buffer = '';
    const req = http.request(
      { agent, host: '127.0.0.1', port, path: '/predict/stream', method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          if (firstToken !== null) return;
          buffer += chunk;
          if (buffer.includes('"type":"token"')) firstToken = now();
        });
        res.on('end', () => resolve({ question, start, firstToken, end: now(), ok: res.statusCode === 200 }));
      },
    );
    req.on('error', () => resolve({ question, start, firstToken, end: now(), ok: false }));
    req.end(JSON.stringify({ question }));
  });
}

async function streamLoad(port, seconds, concurrency) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const results = [];
  const stopAt = Date.now() + seconds * 1000;
  const worker = async () => {
    while (Date.now() < stopAt) results.push(await streamOnce(agent, port, newQuestion('stream')));
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  return results;
}

async function measureTtft(app, fake, streams = STREAMS, paceMs = 0) {
  const label = paceMs > 0 ? `${streams} concurrent, upstream paced ${paceMs} ms/token` : `${streams} concurrent`;
  process.stdout.write(`  stream TTFT (${label})… `);
  await ask(fake.child, 'pace', { ms: paceMs });
  await streamLoad(app.port, WARMUP_S, streams);
  fake.child.send({ type: 'ttft-start' });
  const cpu0 = await cpuMs(app.child);
  const results = await streamLoad(app.port, DURATION_S, streams);
  const cpu1 = await cpuMs(app.child);
  const { marks } = await ask(fake.child, 'ttft-marks');
  await ask(fake.child, 'pace', { ms: 0 });
  const upstream = new Map(marks);
  const ok = results.filter((r) => r.ok);
  const gaps = [];
  for (const r of ok) {
    const t = upstream.get(r.question);
    if (t !== undefined && r.firstToken !== null) gaps.push(r.firstToken - t);
  }
  gaps.sort((a, b) => a - b);
  const whole = ok.map((r) => r.end - r.start).sort((a, b) => a - b);
  const row = {
    name: `/predict/stream, ${label} (TTFT client)`,
    reqs: ok.length / DURATION_S,
    p50: whole.length ? +pct(whole, 50).toFixed(1) : NaN,
    p99: whole.length ? +pct(whole, 99).toFixed(1) : NaN,
    cpu: (cpu1 - cpu0) / Math.max(1, ok.length),
    errors: results.length - ok.length,
    ttft: { streams, paceMs, n: gaps.length, p50: pct(gaps, 50), p99: pct(gaps, 99), max: gaps[gaps.length - 1] },
  };
  console.log(`${row.reqs.toFixed(0)} streams/s, first token after upstream p50 ${row.ttft.p50.toFixed(2)} ms, ` +
    `p99 ${row.ttft.p99.toFixed(2)} ms (${gaps.length} matched)`);
  return row;
}

function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    memGb: (os.totalmem() / 2 ** 30).toFixed(1),
    date: new Date().toISOString(),
  };
}

function fmt(n, digits) {
  return Number.isFinite(n) ? n.toFixed(digits) : '–';
}

function render(rows, m, targets) {
  const floorConst = rows.find((r) => r.key === 'floorConst');
  const floorUp = rows.find((r) => r.key === 'floorUp');
  const lines = [];
  lines.push(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memGb} GB RAM, ${m.os}, Node ${m.node}. Run ${m.date}.`);
  lines.push('');
  lines.push(`Fake upstream at zero latency (separate process), ${CONNECTIONS} autocannon connections unless noted, ` +
    `${WARMUP_S} s warm-up + ${DURATION_S} s measured per scenario, CACHE_DISK_ENABLED=false, LOG_LEVEL=warn. ` +
    'CPU ms/req is the app process\'s own user+system CPU over the measured window divided by completed requests.');
  lines.push('');
  lines.push('| Scenario | req/s | p50 ms | p99 ms | CPU ms/req | × const floor | × upstream floor | errors |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    lines.push(`| ${r.name} | ${fmt(r.reqs, 0)} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${fmt(r.cpu, 3)} | ` +
      `${fmt(r.cpu / floorConst.cpu, 2)} | ${fmt(r.cpu / floorUp.cpu, 2)} | ${r.errors} |`);
  }
  lines.push('');
  lines.push('Stream time to first token: from the fake upstream writing the first content of the `answer` field to our ' +
    'client reading the first `token` event (both stamped with performance.timeOrigin + performance.now()):');
  lines.push('');
  lines.push('| Concurrent streams | Upstream | streams measured | p50 ms | p99 ms | max ms |');
  lines.push('|---:|---|---:|---:|---:|---:|');
  for (const r of rows.filter((x) => x.ttft)) {
    const t = r.ttft;
    const upstream = t.paceMs > 0 ? `paced, ${t.paceMs} ms/token` : 'zero latency';
    lines.push(`| ${t.streams} | ${upstream} | ${t.n} | ${fmt(t.p50, 2)} | ${fmt(t.p99, 2)} | ${fmt(t.max, 2)} |`);
  }
  lines.push('');
  lines.push('| Target (issue #9) | Measured | Met |');
  lines.push('|---|---|:-:|');
  for (const t of targets) lines.push(`| ${t.name} | ${t.measured} | ${t.met ? 'yes' : '**no**'} |`);
  return lines.join('\n');
}

function writeBenchmarks(section) {
  const file = path.join(ROOT, 'BENCHMARKS.md');
  const begin = '<!-- bench:begin (written by npm run bench) -->';
  const end = '<!-- bench:end -->';
  const block = `${begin}\n${section}\n${end}`;
  let text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  if (text.includes(begin) && text.includes(end)) {
    text = text.slice(0, text.indexOf(begin)) + block + text.slice(text.indexOf(end) + end.length);
  } else {
    text =
      '# Benchmarks\n\n`npm run bench` (a few minutes) regenerates the table below; `npm run soak` runs the memory soak. ' +
      'See bench/run.js for how each number is measured.\n\n## Latest run\n\n' + block + '\n' + text;
  }
  fs.writeFileSync(file, text);
}

async function main() {
  const m = machine();
  console.log(`bench: ${m.cpu}, ${m.cores} cores, Node ${m.node}`);
  const fake = await startFake();
  const rows = [];
  const children = [fake.child];
  try {
    console.log('floor app (bench/floor-app.js)');
    const floor = await startApp(FLOOR, { fakeUrl: fake.url });
    children.push(floor.child);
    rows.push({ key: 'floorConst', ...(await measure('floor: bare Nest route, constant', floor,
      [postSpec('/constant', () => ({ question: HIT_QUESTION }))])) });
    rows.push({ key: 'floorUp', ...(await measure('floor: bare Nest route, one openai SDK call', floor,
      [postSpec('/upstream', () => ({ question: newQuestion('floor') }))])) });
    await stopChild(floor.child);

    console.log('service (dist/main.js)');
    const app = await startApp(APP, { fakeUrl: fake.url });
    children.push(app.child);
    rows.push({ key: 'miss', ...(await measure('/predict, cache miss', app,
      [postSpec('/predict', () => ({ question: newQuestion('miss') }))])) });
    rows.push({ key: 'hit', ...(await measure('/predict, cache hit', app,
      [postSpec('/predict', () => ({ question: HIT_QUESTION }))])) });
    rows.push({ key: 'stream', ...(await measure('/predict/stream, whole stream (miss)', app,
      [postSpec('/predict/stream', () => ({ question: newQuestion('stream') }))])) });
    rows.push({ key: 'ttftPaced', ...(await measureTtft(app, fake, STREAMS, PACE_MS)) });
    rows.push({ key: 'ttft', ...(await measureTtft(app, fake, STREAMS)) });
    rows.push({ key: 'ttft10', ...(await measureTtft(app, fake, 10)) });
    rows.push({ key: 'ttft1', ...(await measureTtft(app, fake, 1)) });
    rows.push({ key: 'batch', ...(await measure('/batch of 8 (misses), per request', app,
      [postSpec('/batch', () => Array.from({ length: 8 }, () => ({ question: newQuestion('batch') })))],
      { itemsPerRequest: 8 })) });
    await stopChild(app.child);
  } finally {
    for (const c of children) await stopChild(c);
  }

  const by = Object.fromEntries(rows.map((r) => [r.key, r]));
  const missRatio = by.miss.cpu / by.floorUp.cpu;
  const hitRatio = by.hit.cpu / by.floorConst.cpu;
  const ttftP99 = by.ttftPaced.ttft.p99;
  const targets = [
    { name: 'cache miss CPU/req ≤ 1.5× bare upstream-calling route', measured: `${missRatio.toFixed(2)}×`, met: missRatio <= 1.5 },
    { name: 'cache hit CPU/req ≤ 2× bare constant route', measured: `${hitRatio.toFixed(2)}×`, met: hitRatio <= 2 },
    { name: `stream first token ≤ 5 ms after upstream's, p99, ${STREAMS} concurrent (upstream paced ${PACE_MS} ms/token)`,
      measured: `${fmt(ttftP99, 2)} ms (zero-latency upstream, CPU saturated: ${fmt(by.ttft.ttft.p99, 2)} ms)`, met: ttftP99 <= 5 },
  ];
  const section = render(rows, m, targets);
  console.log(`\n${section}\n`);
  writeBenchmarks(section);
  console.log('BENCHMARKS.md updated');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
