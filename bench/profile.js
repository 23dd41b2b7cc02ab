#!/usr/bin/env node
/**
 * `node bench/profile.js [miss|hit|stream]` (after `npm run build`): runs the service under `node --cpu-prof` with
 * one bench scenario (2 s warm-up + BENCH_DURATION_S measured, same env as npm run bench), then prints the top
 * self-time functions of the profile and the share per package/area. The .cpuprofile stays in .cache/bench-prof/
 * for Chrome DevTools / speedscope.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { ROOT, startFake, startApp, stopChild, newQuestion, postSpec, cannon } = require('./lib');

const scenario = process.argv[2] ?? 'miss';
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 8);
const TOP = Number(process.env.PROFILE_TOP ?? 30);

function area(url) {
  if (!url) return '(native/V8)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 13).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith('node:')) return 'node core';
  const d = url.indexOf('/dist/');
  if (d >= 0) return `src/${url.slice(d + 6).split('/').slice(0, 2).join('/')}`;
  return url;
}

function summarize(file) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = prof.timeDeltas;
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i];
    self.set(id, (self.get(id) ?? 0) + (dt[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const fns = new Map();
  const areas = new Map();
  for (const [id, us] of self) {
    const cf = byId.get(id).callFrame;
    const file = cf.url.replace(/^file:\/\//, '').replace(ROOT + '/', '');
    const key = `${cf.functionName || '(anonymous)'}  ${file}:${cf.lineNumber + 1}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    const a = ['(idle)', '(program)', '(garbage collector)'].includes(cf.functionName) ? cf.functionName : area(cf.url);
    areas.set(a, (areas.get(a) ?? 0) + us);
  }
  const busy = total - (areas.get('(idle)') ?? 0);
  const line = ([k, us]) => `${((100 * us) / busy).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`;
  console.log(`\nprofile ${file}\nbusy ${(busy / 1000).toFixed(0)} ms of ${(total / 1000).toFixed(0)} ms sampled (percentages of busy)\n`);
  console.log('top self time by function:');
  [...fns].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, TOP).forEach((e) => console.log(line(e)));
  console.log('\nself time by area:');
  [...areas].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, 20).forEach((e) => console.log(line(e)));
}

async function main() {
  const dir = path.join(ROOT, '.cache', 'bench-prof');
  fs.mkdirSync(dir, { recursive: true });
  const name = `${scenario}-${Date.now()}.cpuprofile`;
  const fake = await startFake();
  const app = await startApp(path.join(ROOT, 'dist', 'main.js'), {
    fakeUrl: fake.url,
    execArgv: ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}`],
  });
  const specs = {
    miss: [postSpec('/predict', () => ({ question: newQuestion('miss') }))],
    hit: [postSpec('/predict', () => ({ question: 'What is the profiled hit question?' }))],
    stream: [postSpec('/predict/stream', () => ({ question: newQuestion('stream') }))],
  };
  await cannon({ url: app.url, requests: specs[scenario], duration: 2 });
  const result = await cannon({ url: app.url, requests: specs[scenario], duration: DURATION_S });
  console.log(`${scenario}: ${(result['2xx'] / DURATION_S).toFixed(0)} req/s`);
  await stopChild(app.child);
  await stopChild(fake.child);
  summarize(path.join(dir, name));
}

if (require.main === module && process.argv[2] === '--summarize') summarize(process.argv[3]);
else main().catch((error) => {
  console.error(error);
  process.exit(1);
});
