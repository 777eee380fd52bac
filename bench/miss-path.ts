/**
 * CPU time per check of the engine's hit and miss paths, in one process, on the
 * 1,006-policy benchmark bundle: `authorizeInput` on decoded requests, the
 * repeated request as a cache hit and as a miss, distinct requests with the
 * cache on (key, evaluation, store) and off. CPU time (`process.cpuUsage`)
 * rather than wall time, because the machine this runs on is often shared.
 *
 *   npm run build && npx tsx bench/miss-path.ts            this tree's dist/
 *   npx tsx bench/miss-path.ts /tmp/other-checkout           another build (its dist/), for A/B runs back to back
 *
 * It imports the compiled dist/ (not src/ through tsx, whose name-keeping
 * helpers cost as much as some of what is measured).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateMeshBundle } from './generate-bundle.js';
import { checkRequest, distinctShapes, REPEATED_SHAPE, type RequestShape } from './requests.js';

const root = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'));
const SERVICES = 100;
const N = 4000;
const ROUNDS = 25;
const WARM_ROUNDS = 3;

const dist = (p: string) => import(path.join(root, 'dist', p));
const { filesToPolicySetSource } = await dist('bundle/format/bundle-files.js');
const { compileBundleInChunks } = await dist('bundle/active-bundle.js');
const { authorizeInput } = await dist('pipeline/authorize-input.js');
const { checkRequestToInput } = await dist('envoy/check-request.js');
const { BoundedTtlCache } = await dist('cache/decision-cache.js');

const files = new Map([...generateMeshBundle({ services: SERVICES })].map(([k, v]) => [k, Buffer.from(v)]));
const { bundle } = await compileBundleInChunks(filesToPolicySetSource(files, 'miss-path'), { engine: 'js' });
const inputOf = (s: RequestShape) => {
  const r = checkRequestToInput(checkRequest(s, SERVICES));
  if (!r.ok) throw new Error(r.message);
  return r.input;
};
const repeated = inputOf(REPEATED_SHAPE);
const distinct = distinctShapes(N, SERVICES, 0).map(inputOf);
const newCache = () => new BoundedTtlCache(100_000, 60_000);

const runs: Array<[string, () => void]> = [
  [
    'cache hit (the repeated request)',
    () => {
      const cache = newCache();
      for (let i = 0; i < N; i++) authorizeInput(repeated, bundle, 'id', { cache });
    },
  ],
  [
    'miss, the repeated request, no cache',
    () => {
      for (let i = 0; i < N; i++) authorizeInput(repeated, bundle, 'id');
    },
  ],
  [
    'miss, distinct requests, no cache',
    () => {
      for (const input of distinct) authorizeInput(input, bundle, 'id');
    },
  ],
  [
    'miss, distinct requests, cache on',
    () => {
      const cache = newCache();
      for (const input of distinct) authorizeInput(input, bundle, 'id', { cache });
    },
  ],
];

const perCheck = new Map<string, number[]>();
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, run] of runs) {
    const before = process.cpuUsage();
    run();
    const used = process.cpuUsage(before);
    if (r >= WARM_ROUNDS) perCheck.set(name, [...(perCheck.get(name) ?? []), (used.user + used.system) / N]);
  }
}
process.stdout.write(`${root}/dist, ${ROUNDS - WARM_ROUNDS} rounds of ${N} checks, CPU µs per check:\n`);
for (const [name, v] of perCheck) {
  v.sort((a, b) => a - b);
  process.stdout.write(`  ${name}: median ${v[v.length >> 1].toFixed(2)}, min ${v[0].toFixed(2)}\n`);
}
