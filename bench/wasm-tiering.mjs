// The memory/speed trade of Cedar's optimised wasm code, in one process:
// compile the benchmark bundle, time 12,000 cache misses (distinct requests),
// report RSS. Compare:
//   node bench/wasm-tiering.mjs /path/to/bundle
//   node --liftoff-only bench/wasm-tiering.mjs /path/to/bundle
// (a bundle: `npm run bench` writes one; or bench/generate-bundle.ts's writeBundle).
// Needs `npm run build` first (runs from dist/).
import { readPolicyDirectory } from '../dist/bundle/format/policy-directory.js';
import { filesToPolicySetSource } from '../dist/bundle/format/bundle-files.js';
import { compileBundleInChunks } from '../dist/bundle/active-bundle.js';
import { authorizeInput } from '../dist/pipeline/authorize-input.js';
import { checkRequestToInput } from '../dist/envoy/check-request.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: node [--liftoff-only] bench/wasm-tiering.mjs BUNDLE_DIR');
const { bundle: set } = await compileBundleInChunks(filesToPolicySetSource(await readPolicyDirectory(dir), 'v'));
const svc = (i) => `svc-${String(((i % 100) + 100) % 100).padStart(3, '0')}`;
const request = (k) => ({
  attributes: {
    source: { principal: `spiffe://cluster.local/ns/bench/sa/${svc(k - 1)}` },
    destination: {},
    request: {
      time: { seconds: '1790000000' },
      http: { method: 'GET', path: `/api/items/${k}`, host: `${svc(k)}:8080`, headers: { 'user-agent': 'x' } },
    },
  },
});
const inputs = Array.from({ length: 4000 }, (_, k) => checkRequestToInput(request(k)).input);
for (const input of inputs) authorizeInput(input, set, 'id');
const t = performance.now();
for (let r = 0; r < 3; r++) for (const input of inputs) authorizeInput(input, set, 'id');
const perMiss = ((performance.now() - t) * 1000) / (3 * inputs.length);
console.log(
  `${process.execArgv.join(' ') || '(default)'}: ${perMiss.toFixed(0)} µs per cache miss, RSS ${Math.round(process.memoryUsage().rss / 1e6)} MB`,
);
