// What every benchmark server process shares: tell the parent its port, answer
// its questions over IPC (memory, event-loop stalls), exit when told.
// Plain JavaScript over dist/ on purpose: the servers run as `node dist/...`
// runs in production, without a TypeScript loader (tsx's loader thread alone
// adds ~30 MB of RSS and would be counted against us).
import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * @param {{ port: number, adminPort?: number, info?: object }} ready
 * @param {() => Promise<void>} close
 */
/** CPU time this process has used (user + system, µs): a cost per check that other processes on the machine inflate far less than wall-clock figures. */
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

export function serveChild(ready, close) {
  // 1 ms resolution: the stall budget is 10 ms, so the default 10 ms would hide what we measure.
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  process.on('message', (m) => {
    if (m.type === 'stats') {
      // A full collection first when asked (and allowed: --expose-gc), to see live memory rather than garbage not yet collected.
      if (m.gc && typeof globalThis.gc === 'function') globalThis.gc();
      const mem = process.memoryUsage();
      process.send({ type: 'stats', rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, stallMaxMs: delay.max / 1e6, stallP99Ms: delay.percentile(99) / 1e6, monoUs: Number(process.hrtime.bigint() / 1000n), cpuUs: cpuUs() });
      if (m.reset) delay.reset();
    } else if (m.type === 'exit') {
      void close().then(() => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready', ...ready });
}
