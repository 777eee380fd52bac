/**
 * RSS of one process per engine: compile the 1,006-policy benchmark bundle,
 * decide 4,000 distinct requests without a cache, collect garbage, report.
 *
 *   node --expose-gc --import tsx bench/engine-rss.ts js|wasm
 */
import { authorizeInput } from '../src/pipeline/authorize-input.js';
import { filesToPolicySetSource } from '../src/bundle/format/bundle-files.js';
import { compileBundleInChunks } from '../src/bundle/active-bundle.js';
import type { EngineName } from '../src/cedar/js/engine-choice.js';
import { checkRequestToInput } from '../src/envoy/check-request.js';
import { generateMeshBundle } from './generate-bundle.js';
import { checkRequest, distinctShapes } from './requests.js';

const engine = (process.argv[2] ?? 'js') as EngineName;
const mb = (n: number): string => (n / 1e6).toFixed(0);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
gc();
const atStart = process.memoryUsage().rss;
const services = 100;
const files = new Map([...generateMeshBundle({ services, withTimeRule: true })].map(([k, v]) => [k, Buffer.from(v)]));
const { bundle } = await compileBundleInChunks(filesToPolicySetSource(files, `rss-${engine}`), { engine });
const set = bundle.policySet;
gc();
const compiled = process.memoryUsage().rss;
const inputs = distinctShapes(4000, services, 11_000_000).map((s) => {
  const r = checkRequestToInput(checkRequest(s, services));
  if (!r.ok) throw new Error(r.message);
  return r.input;
});
for (const input of inputs) authorizeInput(input, bundle, 'id');
gc();
const after = process.memoryUsage();
process.stdout.write(
  `engine ${engine}: RSS ${mb(atStart)} MB at start (Cedar's wasm loaded), ${mb(compiled)} MB compiled (${set.policies.size} policies, ${set.slices.chunkCount} preparsed chunks), ${mb(after.rss)} MB after ${inputs.length} distinct misses (heap used ${mb(after.heapUsed)} MB)\n`,
);
