/**
 * Where the benchmark server's memory goes, phase by phase: RSS, V8's heap and
 * the resident mappings (/proc/PID/smaps, grouped: the node binary, anonymous
 * memory, glibc's [heap]) after each of the bench's loads on one server, as
 * `npm run bench` runs them: max repeated (h2load), distinct at 500/s, max
 * distinct, a swap, the 100,000-entry fill, then 20 s idle. Each reading is
 * after a full GC and a second's settling.
 *
 *   npm run build && npx tsx bench/rss-phases.ts
 *   npx tsx bench/rss-phases.ts --stop-after repeated      only the first load (and a reading 3 s later)
 *   RSS_FLAGS="--max-semi-space-size=8" npx tsx bench/rss-phases.ts    V8 flags on the server
 *   RSS_ENV='{"MALLOC_ARENA_MAX":"2"}' npx tsx bench/rss-phases.ts      environment of the server
 */
import { fork } from 'node:child_process';
import { statSync, mkdtempSync, readFileSync, renameSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { closedLoop, GrpcH2Client, paced } from './clients/grpc-h2.js';
import { runH2load } from './clients/h2load.js';
import { generateMeshBundle, writeBundle } from './generate-bundle.js';
import { distinctShapes, encode, REPEATED_SHAPE } from './requests.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SERVICES = 100;
const work = mkdtempSync(path.join(tmpdir(), 'rss-'));
const a = path.join(work, 'a');
const b = path.join(work, 'b');
writeBundle(a, generateMeshBundle({ services: SERVICES, variant: 'a', withTimeRule: true }));
writeBundle(b, generateMeshBundle({ services: SERVICES, variant: 'b', withTimeRule: true }));
const live = path.join(work, 'policies');
symlinkSync(a, live);
const env = { ...process.env, ...JSON.parse(process.env.RSS_ENV ?? '{}') };
const flags = (process.env.RSS_FLAGS ?? '').split(' ').filter(Boolean);
const proc = fork(
  path.join(HERE, 'servers', 'authz.mjs'),
  [JSON.stringify({ policies: live, logDestination: path.join(work, 'authz.log') })],
  { execArgv: ['--expose-gc', ...flags], env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
);
const ready: { port: number } = await new Promise((r) =>
  proc.on('message', (m: { type: string; port: number }) => m.type === 'ready' && r(m)),
);
const port = ready.port;
const stats = (): Promise<{ rssBytes: number; heapTotalBytes: number; heapUsedBytes: number }> =>
  new Promise((res) => {
    const on = (s: { type: string }) => {
      if (s.type !== 'stats') return;
      proc.off('message', on);
      res(s as never);
    };
    proc.on('message', on);
    proc.send({ type: 'stats', reset: false, gc: true, memory: true, settleMs: 1000 });
  });
function smaps(): string {
  const parts: Record<string, number> = {};
  let name = '';
  for (const line of readFileSync(`/proc/${proc.pid}/smaps`, 'utf8').split('\n')) {
    const m = /^[0-9a-f]+-[0-9a-f]+ \S+\s+\S+\s+\S+\s+\S+\s*(.*)$/.exec(line);
    if (m) name = m[1].includes('node') ? 'node-binary' : m[1] || 'anon';
    else if (line.startsWith('Rss:')) parts[name] = (parts[name] ?? 0) + Number(line.split(/\s+/)[1]) / 1024;
  }
  return Object.entries(parts)
    .filter(([, v]) => v > 1)
    .map(([k, v]) => `${k} ${v.toFixed(0)}`)
    .join(', ');
}
const report = async (when: string) => {
  const s = await stats();
  console.log(
    `${when}: RSS ${(s.rssBytes / 1e6).toFixed(0)} heap ${(s.heapTotalBytes / 1e6).toFixed(0)} (${(s.heapUsedBytes / 1e6).toFixed(0)} used) | ${smaps()}`,
  );
};
await report('start');
const repeated = encode(REPEATED_SHAPE, SERVICES);
const r = runH2load({ port, frame: repeated, clients: 4, streamsPerClient: 16, durationS: 10, warmupS: 2 });
console.log(`repeated ${r.reqPerSec.toFixed(0)} req/s`);
await report('after max repeated');
console.log(`decision log ${(statSync(path.join(work, 'authz.log')).size / 1e6).toFixed(0)} MB`);
if (process.argv.includes('--stop-after')) {
  await new Promise((r) => setTimeout(r, 3000));
  await report('3 s later');
  proc.kill();
  process.exit(0);
}
const distinct = distinctShapes(10_000, SERVICES, 0).map((s) => encode(s, SERVICES));
const c = new GrpcH2Client(port, 1);
await paced(c, distinct, 500, 10);
await report('after distinct 500/s');
await closedLoop(c, distinct, 32, 10);
await report('after max distinct');
symlinkSync(b, `${live}.next`);
renameSync(`${live}.next`, live);
await paced(c, distinct, 500, 8);
await report('after swap');
c.close();
const fillShapes = Array.from({ length: 100_000 }, (_, k) => ({
  caller: 0,
  principal: `spiffe://cluster.local/ns/load/sa/client-${k}`,
  service: k % (SERVICES - 1),
  method: 'GET',
  path: `/api/items/${k}`,
}));
const fc = new GrpcH2Client(port, 4);
const pool = fillShapes.map((s) => encode(s, SERVICES));
await closedLoop(fc, pool, 32, 600, pool.length);
fc.close();
await report('after 100k fill');
await new Promise((r) => setTimeout(r, 20_000));
await report('20 s idle');
proc.kill();
process.exit(0);
