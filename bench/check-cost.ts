/**
 * What our code costs per cached Check, without a transport: CPU µs per check
 * of the CheckHandler wired as the server wires it, with everything on
 * (decision log with headers to a file, metrics, a matching bundle rate limit,
 * IP lists, trusted hops, a JWT issuer, the decision cache), the benchmark's
 * repeated request decoded from its bytes by our decoder. Each round is a fresh
 * process per build; builds alternate, so two builds compared in one run see
 * the same machine load.
 *
 *   npx tsc -p tsconfig.json && npx tsx bench/check-cost.ts
 *   npx tsx bench/check-cost.ts --base /tmp/base/dist          this build's dist/ against another's, alternating
 *   npx tsx bench/check-cost.ts --rounds 7 --checks 100000
 *   npx tsx bench/check-cost.ts --rounds 1 --cpu-prof            a .cpuprofile per child in the printed directory
 */
import { fork } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateMeshBundle, writeBundle } from './generate-bundle.js';
import { checkRequest, REPEATED_SHAPE } from './requests.js';
import { authorizationService } from '../src/envoy/protos.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SERVICES = 100;
const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const ROUNDS = Number(arg('rounds') ?? 5);
const CHECKS = Number(arg('checks') ?? 60_000);
/** Write a .cpuprofile per child into the work directory (open it in DevTools or speedscope). */
const PROFILE = process.argv.includes('--cpu-prof');
const BUILDS: Array<[string, string]> = [['this build', path.join(HERE, '..', 'dist')]];
if (arg('base')) BUILDS.unshift(['base', path.resolve(arg('base')!)]);

/** Everything on: a rate limit that matches the request (never empties), an IP list, the benchmark's policies. */
const BUNDLE_YAML = `mode: normal
enforcement: enforce
rateLimits:
  - name: per-workload
    match: { principalType: Workload }
    key: principal
    normal: { requestsPerSecond: 1000000, burst: 1000000 }
    high-alert: { requestsPerSecond: 1000000, burst: 1000000 }
`;

interface Result {
  cpuUs: number;
  /** Garbage collections per 1,000 checks, and their pause time per check (µs). */
  gcPer1000: number;
  gcUs: number;
  wallUs: number;
  cache: string;
  answer: unknown;
}

function runChild(dist: string, policies: string, work: string, frame: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    const proc = fork(
      path.join(HERE, 'servers', 'check-cost.mjs'),
      [JSON.stringify({ dist, policies, work, checks: CHECKS, frame })],
      {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        execArgv: PROFILE ? ['--cpu-prof', '--cpu-prof-dir', path.join(work, 'profiles')] : [],
      },
    );
    proc.once('message', (m) => resolve(m as Result));
    proc.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`check-cost child exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'authz-check-cost-'));
  const policies = path.join(work, 'bundle');
  const files = generateMeshBundle({ services: SERVICES, variant: 'a', withTimeRule: true });
  files.set('bundle.yaml', BUNDLE_YAML);
  files.set('lists/blocklist.txt', '203.0.113.0/24\n198.51.100.7\n');
  writeBundle(policies, files);
  const req = checkRequest(REPEATED_SHAPE, SERVICES);
  const frame = (authorizationService().service.Check.requestSerialize(req) as Buffer).toString('base64');
  const load0 = loadavg();
  const cpu = new Map<string, number[]>(BUILDS.map(([n]) => [n, []]));
  const wall = new Map<string, number[]>(BUILDS.map(([n]) => [n, []]));
  const gcs = new Map<string, number[]>(BUILDS.map(([n]) => [n, []]));
  const gcUs = new Map<string, number[]>(BUILDS.map(([n]) => [n, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, dist] of BUILDS) {
      const res = await runChild(dist, policies, work, frame);
      cpu.get(name)!.push(res.cpuUs);
      wall.get(name)!.push(res.wallUs);
      gcs.get(name)!.push(res.gcPer1000);
      gcUs.get(name)!.push(res.gcUs);
      if (r === 0) {
        writeFileSync(path.join(work, `answer-${name.replace(/\W/g, '_')}.json`), JSON.stringify(res.answer, null, 1));
        process.stdout.write(`  ${name}: cache ${res.cache}\n`);
      }
    }
  }
  const load1 = loadavg();
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  process.stdout.write(
    `cached Check, CheckHandler + decoder, everything on, ${CHECKS} checks x ${ROUNDS} rounds (load ${load0.map((x) => x.toFixed(1)).join(' ')} → ${load1.map((x) => x.toFixed(1)).join(' ')}); answers in ${work}\n`,
  );
  for (const [name] of BUILDS) {
    const c = cpu.get(name)!;
    process.stdout.write(
      `  ${name.padEnd(12)} CPU ${median(c).toFixed(1)} µs/check (rounds ${c.map((x) => x.toFixed(1)).join(' ')}), wall ${median(wall.get(name)!).toFixed(1)} µs/check, GC ${median(gcs.get(name)!).toFixed(2)} per 1,000 checks (${median(gcUs.get(name)!).toFixed(2)} µs/check)\n`,
    );
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`check-cost failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
