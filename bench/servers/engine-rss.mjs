// One engine's memory, in a process of its own running the compiled server
// code from dist/ (no TypeScript loader, whose own thread and esbuild cost
// ~40 MB of RSS): compile the bundle as the server does, decide the requests
// without a cache, collect garbage, and print the figures as one JSON line.
// Usage (bench/engine-rss.ts writes the inputs):
//   node --expose-gc bench/servers/engine-rss.mjs js|wasm <bundle.json> <requests.json>
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { compileBundleInChunks } from '../../dist/bundle/active-bundle.js';
import { filesToPolicySetSource } from '../../dist/bundle/format/bundle-files.js';
import { checkRequestToInput } from '../../dist/envoy/check-request.js';
import { authorizeInput } from '../../dist/pipeline/authorize-input.js';
import * as cedarWasm from '../../dist/cedar/cedar-wasm.js';

const [engine = 'js', bundlePath, requestsPath] = process.argv.slice(2);
const mb = (n) => n / 1e6;
// As the server does at start: the wasm engine preparses in this thread (builds before lazy loading had it at import).
if (engine === 'wasm') cedarWasm.loadCedarWasm?.();
globalThis.gc();
const atStart = process.memoryUsage().rss;
const files = new Map(
  Object.entries(JSON.parse(readFileSync(bundlePath, 'utf8'))).map(([k, v]) => [k, Buffer.from(v)]),
);
const requests = JSON.parse(readFileSync(requestsPath, 'utf8'));

let peak = atStart;
const sampler = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage().rss);
}, 20);
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
const t = performance.now();
const compiled = await compileBundleInChunks(filesToPolicySetSource(files, `rss-${engine}`), { engine });
const compileMs = performance.now() - t;
delay.disable();
clearInterval(sampler);
globalThis.gc();
const rssCompiled = process.memoryUsage().rss;

const inputs = requests.map((req) => {
  const r = checkRequestToInput(req);
  if (!r.ok) throw new Error(r.message);
  return r.input;
});
for (const input of inputs) authorizeInput(input, compiled.bundle, 'id');
globalThis.gc();
const after = process.memoryUsage();
const set = compiled.bundle.policySet;
process.stdout.write(
  `${JSON.stringify({
    engine,
    rssAtStartMB: mb(atStart),
    rssCompiledMB: mb(rssCompiled),
    rssAfterMissesMB: mb(after.rss),
    rssPeakDuringCompileMB: mb(peak),
    heapUsedMB: mb(after.heapUsed),
    compileMs,
    // Older builds compiled on this thread and did not time a worker.
    workerMs: compiled.workerMs ?? 0,
    longestStepMs: compiled.longestStepMs,
    longestStepCpuMs: compiled.longestStepCpuMs ?? null,
    longestStepPhase: compiled.longestStepPhase,
    // The histogram's max includes its own 1 ms resolution.
    loopDelayMaxMs: Math.max(0, delay.max / 1e6 - 1),
    policies: set.policies.size,
    preparsedChunks: set.slices.chunkCount,
    misses: inputs.length,
    // Builds before lazy loading loaded Cedar at import.
    wasmLoadedInServingThread: cedarWasm.cedarWasmLoaded ? cedarWasm.cedarWasmLoaded() : true,
  })}\n`,
);
