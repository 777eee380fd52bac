/**
 * `npm run profile`: where a check's time goes, measured rather than guessed.
 *
 *   npm run profile                       repeated (cached) and distinct loads, 10 s each
 *   npm run profile -- --load repeated    one load only (repeated | distinct | swap | memory)
 *   npm run profile -- --load swap        distinct at 500/s with a swap to another 1,006-policy version 2 s in
 *   npm run profile -- --load memory --entries 100000   what holds the memory with the cache full
 *   npm run profile -- --seconds 20       longer runs
 *   npm run profile -- --node-flags "--max-semi-space-size=16"   try V8 flags on the server
 *   npm run profile -- --transport grpc-js  the server's --transport (http2, the default, otherwise)
 *   npm run profile -- --priority -10     the server favoured by the scheduler (root): its own stalls, not the machine's
 *   npm run profile -- --server-config '{"logLevel":"warn"}'   server configuration on top of the benchmark's
 *   npm run profile -- --server /tmp/base/bench/servers/authz.mjs  another build (a copy of bench/servers
 *                                          next to that build's dist/), for before/after runs back to back
 *
 * For each load it starts the benchmark's server (bench/servers/authz.mjs, the
 * 1,006-policy bundle, cache on, decision log to a file) with `--cpu-prof` and
 * `--trace-gc`, drives it (h2load closed loop for repeated requests, the paced
 * Node client at 500 req/s for distinct ones), and prints:
 *   - the top functions by self time, as µs per check (from the .cpuprofile);
 *   - the GC pauses (`--trace-gc`): count, total and longest per kind;
 *   - the event-loop delay histogram (perf_hooks, 1 ms resolution): p50/p99/max.
 * The .cpuprofile files stay in the printed directory: open them in Chrome
 * DevTools (Performance → Load profile) or speedscope for the call trees.
 */
import { fork, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { closedLoop, GrpcH2Client, paced } from './clients/grpc-h2.js';
import { h2loadAvailable, runH2load } from './clients/h2load.js';
import { generateMeshBundle, writeBundle } from './generate-bundle.js';
import { describeStall, markdownTable, ms, num, type StallParts, stallsWithin, summarise } from './report.js';
import { distinctShapes, encode, REPEATED_SHAPE } from './requests.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SERVICES = 100;
const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const SECONDS = Number(arg('seconds') ?? 10);
type Load = 'repeated' | 'distinct' | 'swap' | 'memory';
const LOADS = (arg('load') ?? 'repeated,distinct').split(',') as Load[];
const ENTRIES = Number(arg('entries') ?? 100_000);
const NODE_FLAGS = (arg('node-flags') ?? '').split(' ').filter(Boolean);
const TOP = Number(arg('top') ?? 15);
const TRANSPORT = arg('transport');
const SERVER = arg('server') ?? path.join(HERE, 'servers', 'authz.mjs');
/**
 * `--priority -10`: the server's nice value (every thread of it; lower is favoured, below 0 needs root);
 * `--priority rt`: real-time FIFO scheduling (`chrt -f 10`, root; the kernel still leaves others 5 % of each
 * second). On a machine shared with other work this keeps the server from waiting for a CPU, so that the stalls
 * measured are its own; the load client keeps its normal priority.
 */
const PRIORITY = arg('priority');
/** Extra server configuration as JSON (e.g. '{"logLevel":"warn"}'), merged into what the server is started with. */
const SERVER_CONFIG = JSON.parse(arg('server-config') ?? '{}') as Record<string, unknown>;
const log = (s: string): void => void process.stdout.write(`${s}\n`);

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
  children?: number[];
}
interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The samples taken between two instants (µs, the monotonic clock the profile uses), with the time each stands for. */
function samplesWithin(profile: CpuProfile, fromUs: number, toUs: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (t >= fromUs && t <= toUs) out.push([profile.samples[i], dt]);
  }
  return out;
}

const shortUrl = (url: string): string => url.replace(/^.*\/(node_modules|dist|src)\//, '$1/').replace(/^node:/, '');

/** Self time per function (µs), summed over every node of the same function. */
export function selfTimes(profile: CpuProfile, samples: Array<[number, number]>): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const out = new Map<string, number>();
  for (const [id, dt] of samples) {
    const f = byId.get(id)?.callFrame;
    if (!f) continue;
    const key = `${f.functionName || '(anonymous)'}${f.url ? ` ${shortUrl(f.url)}:${f.lineNumber + 1}` : ''}`;
    out.set(key, (out.get(key) ?? 0) + dt);
  }
  return out;
}

/** Which part a frame belongs to: our module (dist/x/y.js), a package (node_modules/name), Node's own (node:http2), wasm, or V8 (GC). */
function partOf(url: string, fn: string): string | undefined {
  if (fn === '(garbage collector)') return 'V8 garbage collector';
  if (url.startsWith('wasm://')) return 'Cedar (wasm code)';
  if (!url) return undefined;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const ours = /\/dist\/(.+)$/.exec(url);
  if (ours) return ours[1];
  const core = /^node:(?:internal\/)?([a-z_]+)/.exec(url);
  return core ? `node:${core[1]}` : undefined;
}

/** Inclusive time per part: a sample counts once for every part on its stack (so rows overlap: grpc-js includes our handler). */
export function inclusiveByPart(profile: CpuProfile, samples: Array<[number, number]>): Map<string, number> {
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const out = new Map<string, number>();
  for (const [id, dt] of samples) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)?.callFrame;
      const part = f && partOf(f.url, f.functionName);
      if (part) seen.add(part);
    }
    for (const p of seen) out.set(p, (out.get(p) ?? 0) + dt);
  }
  return out;
}

interface GcSummary {
  kind: string;
  count: number;
  totalMs: number;
  maxMs: number;
  /** Heap growth across this kind's collections (MB): for scavenges, what they promoted to the old generation. */
  grownMB: number;
}

interface GcEvent {
  kind: string;
  /** When it ended, in ms since the isolate started (≈ the process's performance.now()). */
  atMs: number;
  pauseMs: number;
  afterMB: number;
}

/** `--trace-gc` lines: "[pid:addr] 1234 ms: Scavenge 12.3 (14.0) -> 8.1 (15.0) MB, 1.23 / 0.00 ms ..." */
export function gcEvents(text: string): GcEvent[] {
  return [
    ...text.matchAll(
      /\s(\d+) ms: ([A-Za-z-]+(?: [a-z-]+)?) ([\d.]+) \([\d.]+\) -> ([\d.]+)[^,]*?MB, ([\d.]+) \/ [\d.]+ ms/g,
    ),
  ].map((m) => ({ kind: m[2], atMs: Number(m[1]), pauseMs: Number(m[5]), afterMB: Number(m[4]) }));
}

export function gcPauses(text: string): GcSummary[] {
  const out = new Map<string, GcSummary>();
  let lastAfter: number | undefined;
  for (const e of gcEvents(text)) {
    const kind = e.kind;
    const pause = e.pauseMs;
    const after = e.afterMB;
    const s = out.get(kind) ?? { kind, count: 0, totalMs: 0, maxMs: 0, grownMB: 0 };
    s.count++;
    s.totalMs += pause;
    s.maxMs = Math.max(s.maxMs, pause);
    if (lastAfter !== undefined) s.grownMB += after - lastAfter;
    lastAfter = after;
    out.set(kind, s);
  }
  return [...out.values()];
}

/** Sets the scheduling of every thread of a process (Linux threads each have their own; later ones inherit it). */
function prioritise(pid: number, priority: string): void {
  const tids = readdirSync(`/proc/${pid}/task`).map(Number);
  for (const tid of tids) {
    if (priority === 'rt') {
      const r = spawnSync('chrt', ['-f', '-p', '10', String(tid)], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`chrt failed: ${r.stderr || r.error?.message}`);
    } else setPriority(tid, Number(priority));
  }
  log(`  server ${priority === 'rt' ? 'real-time (SCHED_FIFO 10)' : `at nice ${priority}`} (${tids.length} threads)`);
}

async function profileLoad(
  load: Exclude<Load, 'memory'>,
  policies: string,
  work: string,
  swapTarget: string,
): Promise<void> {
  const dir = mkdtempSync(path.join(work, `${load}-`));
  const flags = ['--cpu-prof', '--cpu-prof-dir', dir, '--trace-gc', ...NODE_FLAGS];
  const proc = fork(
    SERVER,
    [
      JSON.stringify({
        policies,
        logDestination: path.join(dir, 'authz.log'),
        ...(TRANSPORT ? { transport: TRANSPORT } : {}),
        ...SERVER_CONFIG,
      }),
    ],
    {
      execArgv: flags,
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    },
  );
  // Everything the server prints is --trace-gc (its log goes to a file); the measured part is cut out by offsets,
  // taken after an IPC round trip (h2load runs synchronously here, so lines arrive after it returns).
  let gcText = '';
  proc.stdout!.on('data', (b: Buffer) => {
    gcText += b.toString();
  });
  const { port, adminPort } = await new Promise<{ port: number; adminPort: number }>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    proc.on('message', (m: { type: string; port: number; adminPort: number }) => m.type === 'ready' && resolve(m));
  });
  if (PRIORITY !== undefined) prioritise(proc.pid!, PRIORITY);
  const stats = (reset: boolean) =>
    new Promise<{
      stallMaxMs: number;
      stallP99Ms: number;
      stallParts: StallParts;
      rssBytes: number;
      monoUs: number;
      /** performance.now() at the same instant as monoUs: places the stall clock's times on the profile's clock. */
      nowMs: number;
      cpuUs: number;
    }>((resolve) => {
      const on = (m: { type: string }) => {
        if (m.type !== 'stats') return;
        proc.off('message', on);
        resolve(m as never);
      };
      proc.on('message', on);
      proc.send({ type: 'stats', reset });
    });

  // Warm-up: the JIT, the slices, the cache entry of the repeated request. It is in the profile too, but small next to the run.
  const warm = new GrpcH2Client(port, 1);
  await closedLoop(
    warm,
    distinctShapes(2000, SERVICES, 9_000_000).map((s) => encode(s, SERVICES)),
    8,
    3,
  );
  warm.close();
  const before = await stats(true);
  const from = before.monoUs;
  const gcFrom = gcText.length;
  let checks: number;
  let latencies: number[];
  let swap: { fromEpochMs: number; toEpochMs: number } | undefined;
  if (load === 'repeated' && h2loadAvailable()) {
    const r = runH2load({
      port,
      frame: encode(REPEATED_SHAPE, SERVICES),
      clients: 4,
      streamsPerClient: 16,
      durationS: SECONDS,
    });
    checks = r.succeeded + r.failed;
    latencies = r.latenciesMs;
    log(`\n[${load}] h2load -c4 -m16, ${SECONDS} s: ${num(r.reqPerSec)} req/s`);
  } else if (load === 'repeated') {
    const client = new GrpcH2Client(port, 4);
    const r = await closedLoop(client, [encode(REPEATED_SHAPE, SERVICES)], 64, SECONDS);
    client.close();
    checks = r.sent;
    latencies = r.latenciesMs;
    log(`\n[${load}] node client, 64 in flight, ${SECONDS} s: ${num(r.reqPerSec)} req/s`);
  } else {
    const client = new GrpcH2Client(port, 1);
    const frames = distinctShapes(500 * SECONDS + 100, SERVICES, 0).map((s) => encode(s, SERVICES));
    // swap: 2 s in, the policy link is switched to the other 1,006-policy version (one atomic rename, as a
    // ConfigMap or `ln -sfn` deploy does); the swap window is from the switch to the new version being served.
    const version = async () =>
      ((await (await fetch(`http://127.0.0.1:${adminPort}/bundle`)).json()) as { version: string }).version;
    const before = load === 'swap' ? await version() : '';
    let switched = false;
    const r = await paced(client, frames, 500, SECONDS, (elapsedS) => {
      if (load !== 'swap' || switched || elapsedS < 2) return;
      switched = true;
      swap = { fromEpochMs: performance.timeOrigin + performance.now(), toEpochMs: Number.NaN };
      const next = `${policies}.next`;
      symlinkSync(swapTarget, next);
      renameSync(next, policies);
      void (async () => {
        while ((await version()) === before) await new Promise((res) => setTimeout(res, 20));
        swap!.toEpochMs = performance.timeOrigin + performance.now();
      })();
    });
    client.close();
    checks = r.sent;
    latencies = r.latenciesMs;
    log(`\n[${load}] paced 500 req/s, ${SECONDS} s: ${num(r.reqPerSec)} req/s`);
    if (swap)
      log(
        Number.isNaN(swap.toEpochMs)
          ? '  swap: NOT served within the measured part (run longer: --seconds)'
          : `  swap: the new version served ${((swap.toEpochMs - swap.fromEpochMs) / 1000).toFixed(2)} s after the link switch (compile under load included)`,
      );
  }
  const s = await stats(false);
  await new Promise((r) => setTimeout(r, 200));
  const gcTo = gcText.length;
  // The measured part's --trace-gc lines (and whatever else the --node-flags make V8 print), for reading by hand.
  writeFileSync(path.join(dir, 'trace-gc.txt'), gcText.slice(gcFrom, gcTo));
  writeFileSync(path.join(dir, 'trace-gc-whole-run.txt'), gcText);
  const lat = summarise(latencies);
  log(`  client latency: p50 ${ms(lat.p50)} p99 ${ms(lat.p99)} p99.9 ${ms(lat.p999)} max ${ms(lat.max)} ms`);
  log(`  server CPU time (process.cpuUsage): ${((s.cpuUs - before.cpuUs) / checks).toFixed(1)} µs per check`);
  log(
    `  event-loop delay (perf_hooks, 1 ms resolution): p99 ${ms(s.stallP99Ms)} max ${ms(s.stallMaxMs)} ms; RSS ${(s.rssBytes / 1e6).toFixed(0)} MB`,
  );
  const stallParts = s.stallParts;
  logStalls(stallParts, gcEvents(gcText.slice(gcFrom, gcTo)));
  if (swap && !Number.isNaN(swap.toEpochMs)) {
    const inSwap = stallsWithin(stallParts, swap.fromEpochMs, swap.toEpochMs);
    log(
      `  stalls between the link switch and the new version served: ${inSwap.length} of ≥ 3 ms, longest ${describeStall(inSwap[0], stallParts.schedstat)}`,
    );
  }
  await new Promise<void>((resolve) => {
    proc.removeAllListeners('exit');
    proc.once('exit', () => resolve());
    proc.send({ type: 'exit' });
  });

  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile written in ${dir}`);
  const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as CpuProfile;
  const window = samplesWithin(profile, from, s.monoUs);
  // What ran during the longest stalls: the profile's samples inside each (its clock is monoUs; the stall clock's is
  // performance.now(), and the stats reply gave both at one instant).
  const offsetUs = s.monoUs - s.nowMs * 1000;
  for (const x of stallParts.stalls.slice(0, 3)) {
    const inStall = samplesWithin(profile, x.atMs * 1000 + offsetUs, (x.atMs + x.wallMs) * 1000 + offsetUs);
    const busy = [...selfTimes(profile, inStall)].filter(([k]) => !k.startsWith('(idle)'));
    const parts = [...inclusiveByPart(profile, inStall)].sort((a, b) => b[1] - a[1]).slice(0, 6);
    const total = busy.reduce((a, [, us]) => a + us, 0);
    log(
      `  in the ${x.wallMs.toFixed(1)} ms stall at ${(x.atMs / 1000).toFixed(2)} s (${(total / 1000).toFixed(1)} ms sampled busy): ` +
        parts.map(([k, us]) => `${k} ${(us / 1000).toFixed(1)}`).join(', ') +
        `; top functions: ${busy
          .sort((a, b) => b[1] - a[1])
          .slice(0, 4)
          .map(([k, us]) => `${k} ${(us / 1000).toFixed(1)}`)
          .join(', ')}`,
    );
  }
  const self = [...selfTimes(profile, window)].sort((a, b) => b[1] - a[1]);
  const totalUs = self.reduce((a, [, us]) => a + us, 0);
  const idleUs = self.filter(([k]) => k.startsWith('(idle)')).reduce((a, [, us]) => a + us, 0);
  log(
    `  CPU profile ${path.join(dir, file)}: ${(totalUs / 1e6).toFixed(1)} s of the measured part, ${((1 - idleUs / totalUs) * 100).toFixed(0)}% busy, ${num(checks)} checks: ${((totalUs - idleUs) / checks).toFixed(1)} µs of CPU per check`,
  );
  const parts = [...inclusiveByPart(profile, window)].sort((a, b) => b[1] - a[1]);
  log(
    markdownTable(
      ['inclusive time (part on the stack)', 'µs / check', 'share of busy'],
      parts
        .slice(0, TOP)
        .map(([k, us]) => [k, (us / checks).toFixed(1), `${((us / (totalUs - idleUs)) * 100).toFixed(1)}%`]),
    ),
  );
  log(
    markdownTable(
      ['self time (function, file:line)', 'µs / check', 'share of busy'],
      self
        .filter(([k]) => !k.startsWith('(idle)'))
        .slice(0, TOP)
        .map(([k, us]) => [
          k.replace(/\|/g, '\\|'),
          (us / checks).toFixed(1),
          `${((us / (totalUs - idleUs)) * 100).toFixed(1)}%`,
        ]),
    ),
  );
  const gc = gcPauses(gcText.slice(gcFrom, gcTo));
  log(
    markdownTable(
      ['GC (--trace-gc, measured part)', 'count', 'total ms', 'longest ms', 'per 1,000 checks ms', 'heap grown MB'],
      gc.map((g) => [
        g.kind,
        String(g.count),
        g.totalMs.toFixed(1),
        g.maxMs.toFixed(2),
        ((g.totalMs / checks) * 1000).toFixed(2),
        g.grownMB.toFixed(1),
      ]),
    ),
  );
}

/**
 * The longest stalls, each split into the server's own CPU time and time spent
 * waiting for a CPU (bench/servers/child.mjs), with the GC pauses that ended
 * inside it: what a stall was, rather than only how long it was.
 */
function logStalls(parts: StallParts, gc: GcEvent[]): void {
  const p = parts.stalls;
  const over10 = p.filter((x) => x.wallMs > 11).length;
  const cpuOver10 = p.filter((x) => x.cpuMs > 10).length;
  log(
    `  stalls (gaps of the server's 1 ms clock): longest ${describeStall(p[0], parts.schedstat)}; longest on CPU ${ms(parts.longestOnCpuMs)} ms; ` +
      `${over10}${p.length >= 20 ? '+' : ''} over 10 ms, ${cpuOver10} of them over 10 ms on CPU`,
  );
  for (const x of p.slice(0, 5)) {
    const during = gc.filter((g) => g.atMs >= x.atMs - 2 && g.atMs - g.pauseMs <= x.atMs + x.wallMs + 2);
    log(
      `    at ${(x.atMs / 1000).toFixed(2)} s: ${describeStall(x, parts.schedstat)}${during.length ? `; GC in it: ${during.map((g) => `${g.kind} ${g.pauseMs.toFixed(1)} ms`).join(', ')}` : ''}`,
    );
  }
}

interface MemoryStats {
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  wasmRssBytes?: number;
}

/**
 * What holds the server's memory: RSS split into V8's heap, Cedar's wasm
 * memory (resident part of its reservation) and the rest (code, Node, native
 * buffers), at start and after ENTRIES distinct cacheable requests, each
 * after a full GC. Run with other --node-flags to see what a flag trades.
 */
async function memoryLoad(policies: string, work: string): Promise<void> {
  const proc = fork(SERVER, [JSON.stringify({ policies, logDestination: path.join(work, 'memory.log') })], {
    execArgv: ['--expose-gc', ...NODE_FLAGS],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const ready = await new Promise<{ port: number; adminPort: number }>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    proc.on('message', (m: { type: string; port: number; adminPort: number }) => m.type === 'ready' && resolve(m));
  });
  const memory = () =>
    new Promise<MemoryStats>((resolve) => {
      const on = (m: { type: string }) => {
        if (m.type !== 'stats') return;
        proc.off('message', on);
        resolve(m as never);
      };
      proc.on('message', on);
      proc.send({ type: 'stats', gc: true, memory: true });
    });
  const rows: string[][] = [];
  const row = (when: string, m: MemoryStats, entries: string) => {
    const mb = (b: number | undefined) => (b === undefined ? 'n/a' : (b / 1e6).toFixed(0));
    const other = m.rssBytes - m.heapTotalBytes - (m.wasmRssBytes ?? 0);
    rows.push([
      when,
      entries,
      mb(m.rssBytes),
      mb(m.heapUsedBytes),
      mb(m.heapTotalBytes),
      mb(m.wasmRssBytes),
      mb(m.externalBytes),
      mb(other),
    ]);
  };
  const entriesNow = async () => {
    const text = await (await fetch(`http://127.0.0.1:${ready.adminPort}/metrics`)).text();
    return /^authz_decision_cache_entries (\S+)/m.exec(text)?.[1] ?? '?';
  };
  row('at start', await memory(), await entriesNow());
  const client = new GrpcH2Client(ready.port, 4);
  const frames = Array.from({ length: ENTRIES }, (_, k) =>
    encode(
      {
        caller: 0,
        principal: `spiffe://cluster.local/ns/load/sa/client-${k}`,
        service: k % (SERVICES - 1),
        method: 'GET',
        path: `/api/items/${k}`,
      },
      SERVICES,
    ),
  );
  const fill = await closedLoop(client, frames, 32, 600, frames.length);
  client.close();
  row(`after ${num(fill.sent)} distinct requests (${fill.failed} failed)`, await memory(), await entriesNow());
  await new Promise<void>((resolve) => {
    proc.removeAllListeners('exit');
    proc.once('exit', () => resolve());
    proc.send({ type: 'exit' });
  });
  log(
    `\n[memory]${NODE_FLAGS.length ? ` flags ${NODE_FLAGS.join(' ')}` : ''} (MB; each after a full GC; other = RSS − V8 heap − wasm: code, Node, native buffers)`,
  );
  log(
    markdownTable(
      ['when', 'cache entries', 'RSS', 'heap used', 'heap total', 'Cedar wasm (resident)', 'external', 'other'],
      rows,
    ),
  );
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'authz-profile-'));
  const versions = { a: path.join(work, 'bundle-a'), b: path.join(work, 'bundle-b') };
  writeBundle(versions.a, generateMeshBundle({ services: SERVICES, variant: 'a', withTimeRule: true }));
  writeBundle(versions.b, generateMeshBundle({ services: SERVICES, variant: 'b', withTimeRule: true }));
  log(`profiles in ${work}${NODE_FLAGS.length ? `; server flags ${NODE_FLAGS.join(' ')}` : ''}`);
  for (const load of LOADS) {
    // Each load starts on version a, behind a link (the swap load switches it to b).
    const policies = path.join(work, `policies-${load}`);
    symlinkSync(versions.a, policies);
    await (load === 'memory' ? memoryLoad(policies, work) : profileLoad(load, policies, work, versions.b));
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`profile failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
