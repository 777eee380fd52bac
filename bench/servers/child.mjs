// What every benchmark server process shares: tell the parent its port, answer
// its questions over IPC (memory, event-loop stalls), exit when told.
// Plain JavaScript over dist/ on purpose: the servers run as `node dist/...`
// runs in production, without a TypeScript loader (tsx's loader thread alone
// adds ~30 MB of RSS and would be counted against us).
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * Resident bytes of the WebAssembly memories (Cedar's). V8 reserves each
 * memory as one mapping of ~8 GiB and makes its used part read-write, which
 * splits it: an anonymous rw mapping directly followed by the ≥ 1 GiB
 * inaccessible rest. The resident part of those rw mappings is the wasm
 * memory. Linux only (/proc); undefined elsewhere.
 */
function wasmResidentBytes() {
  try {
    const vmas = [];
    let cur;
    for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+)\s+\S+\s+\S+\s+\S+\s*(.*)$/.exec(line);
      if (m) vmas.push((cur = { from: parseInt(m[1], 16), to: parseInt(m[2], 16), perms: m[3], name: m[4], rss: 0 }));
      else if (cur && line.startsWith('Rss:')) cur.rss = Number(line.split(/\s+/)[1]) * 1024;
    }
    let total = 0;
    for (let i = 1; i < vmas.length; i++) {
      const [rw, rest] = [vmas[i - 1], vmas[i]];
      if (
        rest.to - rest.from >= 2 ** 30 &&
        rest.perms.startsWith('---') &&
        rw.to === rest.from &&
        rw.perms.startsWith('rw') &&
        !rw.name
      )
        total += rw.rss;
    }
    return total;
  } catch {
    return undefined;
  }
}

/** CPU time this process has used (user + system, µs): a cost per check that other processes on the machine inflate far less than wall-clock figures. */
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/**
 * @param {{ port: number, adminPort?: number, info?: object }} ready
 * @param {() => Promise<void>} close
 */
export function serveChild(ready, close) {
  // 1 ms resolution: the stall budget is 10 ms, so the default 10 ms would hide what we measure.
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  process.on('message', (m) => {
    if (m.type === 'stats') {
      // A full collection first when asked (and allowed: --expose-gc), to see live memory rather than garbage not yet collected.
      if (m.gc && typeof globalThis.gc === 'function') globalThis.gc();
      const mem = process.memoryUsage();
      process.send({
        type: 'stats',
        rssBytes: mem.rss,
        heapUsedBytes: mem.heapUsed,
        heapTotalBytes: mem.heapTotal,
        externalBytes: mem.external,
        wasmRssBytes: m.memory ? wasmResidentBytes() : undefined,
        stallMaxMs: delay.max / 1e6,
        stallP99Ms: delay.percentile(99) / 1e6,
        monoUs: Number(process.hrtime.bigint() / 1000n),
        cpuUs: cpuUs(),
      });
      if (m.reset) delay.reset();
    } else if (m.type === 'exit') {
      void close().then(() => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready', ...ready });
}
