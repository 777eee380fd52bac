/**
 * What one decision cache entry costs, in heap bytes and in time per lookup,
 * through the real pipeline (authorizeInput → engine → cache) on the
 * benchmark's 1,006-policy bundle, with the benchmark's cacheable requests
 * (a distinct caller and path each, as `npm run bench` fills its 100k entries).
 *
 *   node --expose-gc --import tsx bench/cache-cost.ts [entries]
 *
 * Prints: heap bytes per entry (heap used after a full collection, filled minus
 * empty, divided by the entries), the pipeline's CPU time per check on a cache
 * hit and on a miss, and the key digest alone. Run it on two checkouts back to back
 * for a before/after (it imports ../src, so it measures the tree it sits in).
 */
import { authorizeInput } from '../src/pipeline/authorize-input.js';
import { EngineResultCache } from '../src/cache/decision-cache.js';
import { filesToPolicySetSource } from '../src/bundle/format/bundle-files.js';
import { compileBundleInChunks } from '../src/bundle/active-bundle.js';
import type { EngineResult } from '../src/cedar/evaluate.js';
import { checkRequestToInput } from '../src/envoy/check-request.js';
import type { RequestModel } from '../src/envoy/request-model.js';
import { generateMeshBundle } from './generate-bundle.js';
import { checkRequest, type RequestShape } from './requests.js';

const SERVICES = 100;
const ENTRIES = Number(process.argv[2] ?? 100_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc --import tsx bench/cache-cost.ts');

const shape = (k: number): RequestShape => ({
  caller: 0,
  principal: `spiffe://cluster.local/ns/load/sa/client-${k}`,
  service: k % (SERVICES - 1),
  method: 'GET',
  path: `/api/items/${k}`,
});
const input = (k: number): RequestModel => {
  const r = checkRequestToInput(checkRequest(shape(k), SERVICES));
  if (!r.ok) throw new Error(r.message);
  return r.input;
};
const heapUsed = (): number => {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed;
};

async function main(): Promise<void> {
  const files = new Map(
    [...generateMeshBundle({ services: SERVICES, withTimeRule: true })].map(([k, v]) => [k, Buffer.from(v)]),
  );
  const { bundle } = await compileBundleInChunks(filesToPolicySetSource(files, 'cache-cost'), { engine: 'js' });

  // Every service's slice planned and the JIT warm, with a cache thrown away afterwards.
  const warm = new EngineResultCache<EngineResult>(10_000, 60_000);
  for (let k = 0; k < 5_000; k++) authorizeInput(input(10_000_000 + k), bundle, 'id', { cache: warm });
  warm.clear();

  const cache = new EngineResultCache<EngineResult>(ENTRIES, 60_000);
  const empty = heapUsed();
  let misses = 0;
  const fillStart = performance.now();
  for (let k = 0; k < ENTRIES; k++) if (authorizeInput(input(k), bundle, 'id', { cache }).cache === 'miss') misses++;
  const fillMs = performance.now() - fillStart;
  const filled = heapUsed();
  const perEntry = (filled - empty) / cache.size;

  // Hits: the same requests again (inputs built beforehand, so only the pipeline is timed).
  const sample = Array.from({ length: 20_000 }, (_, i) => input((i * 7919) % ENTRIES));
  // CPU time of this process (user + system), median of 5 rounds: on a shared machine other processes inflate
  // wall-clock timings far more than they inflate this.
  const cpuUs = (): number => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  const perCall = (fn: (i: number) => void, n: number): number => {
    const rounds: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t = cpuUs();
      for (let i = 0; i < n; i++) fn(i);
      rounds.push((cpuUs() - t) / n);
    }
    return rounds.sort((a, b) => a - b)[2];
  };
  let hits = 0;
  const hitUs = perCall((i) => {
    if (authorizeInput(sample[i], bundle, 'id', { cache }).cache === 'hit') hits++;
  }, sample.length);
  // Misses: requests never seen (each round its own), so every one is evaluated and stored.
  const missSample = Array.from({ length: 5 * 4_000 }, (_, i) => input(20_000_000 + i));
  let m = 0;
  const missUs = perCall(() => {
    authorizeInput(missSample[m++], bundle, 'id', { cache });
  }, 4_000);
  // The key's digest alone, on a string as long as a typical key of these requests.
  const typical = JSON.stringify([
    'x'.repeat(44),
    'dir-0123456789ab',
    'envoy',
    'Spiffe',
    shape(123).principal,
    'Action',
    'GET',
    'Service',
    'svc-23',
    0,
    { path: ['t', '0101'], headers: {}, source: { principal: shape(123).principal, namespace: 'load' } },
  ]);
  const digest = (await import('../src/cache/cache-key.js')) as { digestKey?: (s: string) => string };
  const digestUs = digest.digestKey ? perCall((i) => digest.digestKey!(typical + (i & 7)), 200_000) : undefined;

  const out = {
    entries: cache.size,
    fillMisses: misses,
    heapBytesPerEntry: Math.round(perEntry),
    heapMBForEntries: +((filled - empty) / 1e6).toFixed(1),
    fillMicrosecondsPerCheck: +((fillMs * 1000) / ENTRIES).toFixed(2),
    hitMicrosecondsPerCheck: +hitUs.toFixed(2),
    hitsSeen: hits,
    missMicrosecondsPerCheck: +missUs.toFixed(2),
    ...(digestUs === undefined
      ? {}
      : { digestMicroseconds: +digestUs.toFixed(2), digestedKeyChars: typical.length + 1 }),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`cache-cost failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
