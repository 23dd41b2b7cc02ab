/**
 * The fake OpenAI upstream for benchmarks (test/support/fake-openai.ts, zero latency, nothing recorded), run as a
 * forked child so its CPU is not shared with the load generator. It also timestamps, per request, when the first
 * content of the streamed `answer` field is written to the socket (performance.timeOrigin + performance.now(),
 * comparable across processes), keyed by the question, and hands those to the parent on {type:'ttft-marks'}.
 */
'use strict';
const path = require('node:path');
const http = require('node:http');
const { performance } = require('node:perf_hooks');

const { loadTs } = require('../scripts/load-ts');

const now = () => performance.timeOrigin + performance.now();
const ANSWER_HEADER = '[[ ## answer ## ]]';
let marking = false;
let pace = 0; // ms before each streamed delta (set over IPC by bench/run.js)
let marks = new Map(); // question -> epoch ms of the first answer content chunk
const tracked = new WeakMap(); // ServerResponse -> { question, content, done }

// Timestamp the write that carries the first character of the answer field (only while marking is on).
const origWrite = http.ServerResponse.prototype.write;
http.ServerResponse.prototype.write = function (chunk, ...rest) {
  const state = marking ? tracked.get(this) : undefined;
  if (state && !state.done && typeof chunk === 'string' && chunk.startsWith('data: {')) {
    const t = now();
    try {
      const delta = JSON.parse(chunk.slice(6)).choices?.[0]?.delta?.content;
      if (typeof delta === 'string') {
        state.content += delta;
        const at = state.content.indexOf(ANSWER_HEADER);
        if (at >= 0 && state.content.slice(at + ANSWER_HEADER.length).trim().length > 0) {
          state.done = true;
          marks.set(state.question, t);
        }
      }
    } catch {
      /* not a JSON chunk */
    }
  }
  return origWrite.call(this, chunk, ...rest);
};

function questionOf(body) {
  const messages = Array.isArray(body?.messages) ? body.messages : [];
  const user = [...messages].reverse().find((m) => m?.role === 'user');
  const match = /\[\[ ## question ## \]\]\n([\s\S]*?)\n\nRespond with/.exec(String(user?.content ?? ''));
  return match ? match[1] : null;
}

async function main() {
  const { startFakeOpenAI, dspyCompletionText } = loadTs(
    path.join(__dirname, '..', 'test', 'support', 'fake-openai.ts'),
  );
  const fake = await startFakeOpenAI({
    record: false,
    // `pace` (ms before each streamed delta) imitates a model generating tokens; 0 streams as fast as possible.
    responder: (request) => ({
      text: dspyCompletionText(request.body),
      ...(pace > 0 && request.body?.stream === true && { chunkDelayMs: pace }),
    }),
  });
  process.send({ type: 'ready', url: fake.url });
  process.on('message', (msg) => {
    if (msg?.type === 'pace') {
      pace = Number(msg.ms) || 0;
      process.send({ type: 'pace', id: msg.id });
    } else if (msg?.type === 'ttft-start') {
      marks = new Map();
      marking = true;
    } else if (msg?.type === 'ttft-marks') {
      marking = false;
      process.send({ type: 'ttft-marks', marks: [...marks.entries()] });
      marks = new Map();
    } else if (msg?.type === 'sockets') {
      process.send({ type: 'sockets', id: msg.id, connections: fake.connections, open: fake.openSockets });
    } else if (msg?.type === 'cpu') {
      const c = process.cpuUsage();
      process.send({ type: 'cpu', id: msg.id, user: c.user, system: c.system });
    } else if (msg?.type === 'exit') {
      fake.close().then(() => process.exit(0));
    }
  });
}

// Per-response tracking: read the streamed request's question alongside the fake's own body reader.
const origEmit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, req, res) {
  if (event === 'request' && marking && req.method === 'POST') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (body.stream === true) {
          const q = questionOf(body);
          if (q) tracked.set(res, { question: q, content: '', done: false });
        }
      } catch {
        /* ignore */
      }
    });
  }
  return origEmit.apply(this, arguments);
};

main().catch((error) => {
  process.stderr.write(`fake-upstream: ${error?.stack ?? error}\n`);
  process.exit(1);
});
