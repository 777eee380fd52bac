// What every benchmark server process shares: tell the parent its port, answer
// its questions over IPC (memory, event-loop stalls), exit when told.
// Plain JavaScript over dist/ on purpose: the servers run as `node dist/...`
// runs in production, without a TypeScript loader (tsx's loader thread alone
// adds ~30 MB of RSS and would be counted against us).
import { openSync, readFileSync, readSync } from 'node:fs';
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
 * What each stall was made of. A stall measured by its wall time alone cannot
 * tell the server's own work (a GC pause, a long synchronous step) from the
 * server's thread waiting for a CPU that other processes hold: on a shared
 * 2-core machine, with the load client beside it, the second can dominate.
 * Linux's /proc/thread-self/schedstat gives the main thread's time on a CPU
 * and its time waiting in the run queue, in ns; read at every tick of a 1 ms
 * timer (~5 µs a read), each gap between ticks is split into: on CPU (our
 * work), waiting for a CPU (other processes), and the rest (blocked: waiting
 * for GC helper threads, a lock, synchronous I/O). Elsewhere only wall times.
 */
class StallClock {
  /** Gaps this long or longer (ms, timer period included) are kept. */
  static KEEP_MS = 3;
  static TOP = 20;

  constructor() {
    this.buf = Buffer.alloc(128);
    try {
      this.fd = openSync('/proc/thread-self/schedstat', 'r');
      this.read();
    } catch {
      this.fd = undefined;
    }
    this.reset();
    this.timer = setInterval(() => this.tick(), 1);
    this.timer.unref();
  }

  /** [on-CPU ns, run-queue wait ns] of the main thread, or [0, 0] without schedstat. */
  read() {
    if (this.fd === undefined) return [0, 0];
    const n = readSync(this.fd, this.buf, 0, this.buf.length, 0);
    const [cpu, wait] = this.buf.toString('latin1', 0, n).split(' ');
    return [Number(cpu), Number(wait)];
  }

  tick() {
    const now = performance.now();
    const [cpu, wait] = this.read();
    const wallMs = now - this.lastNow;
    const cpuMs = (cpu - this.lastCpu) / 1e6;
    const waitMs = (wait - this.lastWait) / 1e6;
    if (wallMs >= StallClock.KEEP_MS) {
      this.longestOnCpuMs = Math.max(this.longestOnCpuMs, cpuMs);
      const stall = { atMs: this.lastNow, atEpochMs: performance.timeOrigin + this.lastNow, wallMs, cpuMs, waitMs };
      this.top.push(stall);
      if (this.top.length > StallClock.TOP) {
        this.top.sort((a, b) => b.wallMs - a.wallMs);
        this.top.length = StallClock.TOP;
      }
    }
    this.lastNow = now;
    this.lastCpu = cpu;
    this.lastWait = wait;
  }

  reset() {
    this.top = [];
    this.longestOnCpuMs = 0;
    this.lastNow = performance.now();
    [this.lastCpu, this.lastWait] = this.read();
  }

  report() {
    return {
      schedstat: this.fd !== undefined,
      longestOnCpuMs: this.longestOnCpuMs,
      stalls: [...this.top].sort((a, b) => b.wallMs - a.wallMs),
    };
  }
}

/**
 * @param {{ port: number, adminPort?: number, info?: object }} ready
 * @param {() => Promise<void>} close
 */
export function serveChild(ready, close) {
  // 1 ms resolution: the stall budget is 10 ms, so the default 10 ms would hide what we measure.
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const clock = new StallClock();
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
        stallParts: clock.report(),
        monoUs: Number(process.hrtime.bigint() / 1000n),
        nowMs: performance.now(),
        cpuUs: cpuUs(),
      });
      if (m.reset) {
        delay.reset();
        clock.reset();
      }
    } else if (m.type === 'exit') {
      void close().then(() => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready', ...ready });
}
