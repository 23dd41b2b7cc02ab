/**
 * Bench-only preload (`node -r ./bench/heap-probe.js …`), never part of src/. When the process has an IPC channel
 * (started with child_process.fork), it answers:
 *   {type:'heap'} -> {type:'heap', heapUsed}   after global.gc() (needs --expose-gc; without it, no GC is forced)
 *   {type:'cpu'}  -> {type:'cpu', user, system} process.cpuUsage() in microseconds
 *   {type:'exit'} -> process.exit(0)            (so --cpu-prof writes its profile)
 */
'use strict';
if (typeof process.send === 'function') {
  process.on('message', (msg) => {
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'heap') {
      if (typeof global.gc === 'function') {
        global.gc();
        global.gc();
      }
      const m = process.memoryUsage();
      process.send({ type: 'heap', id: msg.id, heapUsed: m.heapUsed, rss: m.rss, gc: typeof global.gc === 'function' });
    } else if (msg.type === 'cpu') {
      const c = process.cpuUsage();
      process.send({ type: 'cpu', id: msg.id, user: c.user, system: c.system });
    } else if (msg.type === 'exit') {
      process.exit(0);
    }
  });
  // The IPC channel must not keep a process alive on its own.
  process.channel?.unref();
}
