/**
 * How fast a policy change reaches a fleet: `npx tsx bench/propagation.ts`
 * (after `npm run build`; the servers run from dist/).
 *
 * Starts N real servers (separate processes, `authz serve`) against a real
 * s3rver and a real `nats-server -js`, both on loopback, and for each mode:
 *
 *   push  servers with --notify (and the default 10 s safety-net poll);
 *         each change is activated and put on NATS, as `bundle activate` does
 *   poll  the same servers without --notify, polling every --poll-baseline
 *
 * activates --changes versions one after another (each at a random point of
 * the poll cycle) and records, per change, the time from the activation
 * returning to the LAST of the N servers swapping the new version in. The
 * swap time is the `time` of each server's "policy set activated" log line
 * (same machine, same clock), so measuring costs the servers nothing; after
 * each change every server is also asked over gRPC, and must answer with the
 * new version. Then the same for `authz lockdown on`, run as a real CLI
 * process: how long the command takes, and how long after it returns the last
 * server has swapped in the locked version (each must then answer the locked
 * method with 503).
 *
 * Flags: --servers 10 --changes 20 --lockdowns 5 --poll-baseline 1s --modes push,poll
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { activateVersion } from '../src/operator/bundle-publish.js';
import { parseDurationMs } from '../src/config/duration.js';
import { publishPointer } from '../src/bundle/notify/pointer-channel.js';
import { type AuthzClient, connectAuthz } from '../test/support/grpc-client.js';
import { GET_X } from '../test/support/requests.js';
import { publish } from '../test/support/bundle-fixtures.js';
import { TestNatsServer } from '../test/support/nats-server.js';
import { TEST_BUCKET, TestS3Store } from '../test/support/s3rver-store.js';

const { values: args } = parseArgs({
  options: {
    servers: { type: 'string', default: '10' },
    changes: { type: 'string', default: '20' },
    lockdowns: { type: 'string', default: '5' },
    'poll-baseline': { type: 'string', default: '1s' },
    modes: { type: 'string', default: 'push,poll' },
  },
});
const N = Number(args.servers);
const CHANGES = Number(args.changes);
const LOCKDOWNS = Number(args.lockdowns);
const POLL_BASELINE_MS = parseDurationMs(args['poll-baseline']!)!;
const MODES = args.modes!.split(',') as ('push' | 'poll')[];
const BUNDLE = 'prop';
/** A change that has not reached every server by then is reported as missed. */
const GIVE_UP_MS = 30_000;

interface Server {
  proc: ChildProcess;
  client: AuthzClient;
  grpcPort: number;
  adminPort: number;
  /** version → epoch ms of this server's "policy set activated" line. */
  activated: Map<string, number>;
}

async function startServer(s3: TestS3Store, extra: string[]): Promise<Server> {
  const proc = spawn(
    process.execPath,
    [
      'dist/cli/main.js',
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      '--s3-endpoint',
      s3.endpoint,
      '--bucket',
      TEST_BUCKET,
      '--bundle',
      BUNDLE,
      '--decision-log-headers',
      'false',
      '--log-level',
      'info',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env } },
  );
  const activated = new Map<string, number>();
  let adminPort = 0;
  const grpcPort = await new Promise<number>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const line of lines) {
        if (line.includes('"msg":"policy set activated"')) {
          const l = JSON.parse(line) as { time: string; version: string };
          activated.set(l.version, Date.parse(l.time));
        } else if (line.includes('"msg":"authz server listening"')) {
          adminPort = Number(/"admin":"127\.0\.0\.1:(\d+)"/.exec(line)![1]);
          resolve(Number(/"grpc":"127\.0\.0\.1:(\d+)"/.exec(line)![1]));
        }
      }
    });
    proc.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return { proc, grpcPort, adminPort, activated, client: connectAuthz(grpcPort) };
}

async function stopServers(servers: Server[]): Promise<void> {
  await Promise.all(
    servers.map(
      (s) =>
        new Promise<void>((resolve) => {
          s.client.close();
          if (s.proc.exitCode !== null) return resolve();
          s.proc.once('exit', () => resolve());
          s.proc.kill('SIGTERM');
        }),
    ),
  );
}

/** Mean download and compile-and-swap time over every server's loads, from their /metrics. */
async function stepMeans(servers: Server[]): Promise<string> {
  let dl = 0,
    dlN = 0,
    act = 0,
    actN = 0;
  for (const s of servers) {
    const text = await (await fetch(`http://127.0.0.1:${s.adminPort}/metrics`)).text();
    const v = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
    dl += v('authz_bundle_download_duration_seconds_sum');
    dlN += v('authz_bundle_download_duration_seconds_count');
    act += v('authz_bundle_activation_duration_seconds_sum');
    actN += v('authz_bundle_activation_duration_seconds_count');
  }
  return `per swap on a server: download ${((dl / dlN) * 1000).toFixed(0)} ms, compile and swap ${((act / actN) * 1000).toFixed(0)} ms (means over ${actN} swaps)`;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/**
 * ms from `t0` (epoch ms) until the last server swapped `version` in;
 * Infinity when one has not within GIVE_UP_MS. Then every server must answer
 * `probe` truly (the swap is what it enforces).
 */
async function lastSwap(
  servers: Server[],
  version: string,
  t0: number,
  probe: (s: Server) => Promise<boolean>,
): Promise<number> {
  while (!servers.every((s) => s.activated.has(version)) && Date.now() - t0 < GIVE_UP_MS)
    await new Promise((r) => setTimeout(r, 10));
  if (!servers.every((s) => s.activated.has(version))) return Infinity;
  for (const s of servers)
    if (!(await probe(s))) throw new Error(`a server logged ${version} active but does not answer with it`);
  return Math.max(...servers.map((s) => s.activated.get(version)! - t0));
}

/** Until every server answers `probe` truly (set-up between measurements). */
async function untilAll(servers: Server[], probe: (s: Server) => Promise<boolean>): Promise<void> {
  const t0 = Date.now();
  for (const s of servers) {
    while (!(await probe(s).catch(() => false))) {
      if (Date.now() - t0 > GIVE_UP_MS) throw new Error('servers did not converge');
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
function summary(label: string, ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const missed = s.filter((x) => x === Infinity).length;
  return `${label.padEnd(52)} n=${s.length}  p50 ${pct(s, 50).toFixed(0).padStart(5)} ms  p99 ${pct(s, 99).toFixed(0).padStart(5)} ms  max ${s.at(-1)!.toFixed(0).padStart(5)} ms${missed ? `  (${missed} missed ${GIVE_UP_MS} ms)` : ''}`;
}

function runCli(argv: string[]): Promise<{ ms: number; code: number; out: string }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['dist/cli/main.js', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (c) => (out += c));
    proc.stderr.on('data', (c) => (out += c));
    proc.once('exit', (code) => resolve({ ms: performance.now() - t0, code: code ?? -1, out }));
  });
}

async function main(): Promise<void> {
  const load0 = loadavg()[0];
  const [s3, nats] = await Promise.all([TestS3Store.start(), TestNatsServer.start()]);
  const store = s3.bundleStore(BUNDLE);
  const versions = Array.from({ length: CHANGES + 1 }, (_, i) => `v${i}`);
  for (const [i, v] of versions.entries()) await publish(store, v, i % 2 === 0 ? 'open' : 'closed');
  await activateVersion(store, 'v0');
  const settings = { servers: [nats.url] };
  const storeFlags = ['--s3-endpoint', s3.endpoint, '--bucket', TEST_BUCKET, '--bundle', BUNDLE];
  console.log(
    `${N} servers, ${CHANGES} changes, ${LOCKDOWNS} lockdowns per mode; node ${process.version}; load average ${load0.toFixed(1)} at start`,
  );

  let next = 1;
  for (const mode of MODES) {
    const pollMs = mode === 'push' ? 10_000 : POLL_BASELINE_MS;
    const extra = mode === 'push' ? ['--notify', nats.url] : ['--poll-interval', `${POLL_BASELINE_MS}ms`];
    const servers: Server[] = [];
    for (let i = 0; i < N; i++) servers.push(await startServer(s3, extra));
    // Everyone on the active version (and, with push, connected) before the first change.
    const current = (await store.getPointer()) as { pointer: { version: string } };
    await untilAll(servers, async (s) => (await s.client.answer(GET_X)).version === current.pointer.version);
    await new Promise((r) => setTimeout(r, 1000));
    const rss = servers.map((s) => rssMb(s.proc.pid!)).sort((a, b) => a - b);

    const times: number[] = [];
    for (let c = 0; c < CHANGES; c++) {
      const v = versions[next++ % versions.length];
      // Land anywhere in the poll cycle (push does not care; polling does).
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(pollMs, POLL_BASELINE_MS)));
      const { pointer } = await activateVersion(store, v);
      if (mode === 'push') await publishPointer(settings, store.location, pointer);
      // What `bundle activate` does, in that order: the command returns here.
      const t0 = Date.now();
      times.push(await lastSwap(servers, v, t0, async (s) => (await s.client.answer(GET_X)).version === v));
    }
    console.log(
      summary(
        `${mode === 'push' ? 'push (NATS), poll 10s' : `poll alone, every ${POLL_BASELINE_MS} ms`}: activate -> last of ${N}`,
        times,
      ),
    );

    const POST_X = { ...GET_X, method: 'POST' };
    const cli: number[] = [];
    const lock: number[] = [];
    for (let l = 0; l < LOCKDOWNS; l++) {
      await new Promise((r) => setTimeout(r, Math.random() * POLL_BASELINE_MS));
      const on = await runCli([
        'lockdown',
        'on',
        '--service',
        'svc',
        ...storeFlags,
        ...(mode === 'push' ? ['--notify', nats.url] : []),
      ]);
      if (on.code !== 0) throw new Error(`lockdown on failed: ${on.out}`);
      const returned = Date.now();
      cli.push(on.ms);
      const locked = /published \S+ (\S+) \(derived from/.exec(on.out)![1];
      lock.push(
        await lastSwap(servers, locked, returned, async (s) => (await s.client.answer(POST_X)).httpStatus === 503),
      );
      const off = await runCli([
        'lockdown',
        'off',
        '--service',
        'svc',
        ...storeFlags,
        ...(mode === 'push' ? ['--notify', nats.url] : []),
      ]);
      if (off.code !== 0) throw new Error(`lockdown off failed: ${off.out}`);
      await untilAll(servers, async (s) => (await s.client.answer(POST_X)).httpStatus !== 503);
    }
    console.log(summary(`  lockdown on (CLI process): command duration`, cli));
    console.log(summary(`  lockdown on: command returns -> last of ${N} answers 503`, lock));
    console.log(`  ${await stepMeans(servers)}`);
    console.log(
      `  RSS per server: median ${pct(rss, 50).toFixed(0)} MB (min ${rss[0].toFixed(0)}, max ${rss.at(-1)!.toFixed(0)})`,
    );
    await stopServers(servers);
  }
  console.log(`load average ${loadavg()[0].toFixed(1)} at end`);
  await Promise.all([s3.close(), nats.close()]);
}

await main();
process.exit(0);
