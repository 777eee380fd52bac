/**
 * RSS of one process per engine: compile the 1,006-policy benchmark bundle as
 * the server does (Cedar's front end in a worker, the assembly in steps on
 * this thread), decide 4,000 distinct requests without a cache, collect
 * garbage, report. Also: the compile's wall time and longest step, the
 * longest event-loop stall while it ran (the loop-delay histogram, which sees
 * what the step timer cannot, e.g. reading the worker's answer), RSS at its
 * peak while the worker ran, and whether Cedar's wasm was ever loaded in this
 * (the serving) thread.
 *
 *   node --expose-gc --import tsx bench/engine-rss.ts js|wasm
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { authorizeInput } from '../src/pipeline/authorize-input.js';
import { filesToPolicySetSource } from '../src/bundle/format/bundle-files.js';
import { compileBundleInChunks } from '../src/bundle/active-bundle.js';
import { cedarWasmLoaded } from '../src/cedar/cedar-wasm.js';
import type { EngineName } from '../src/cedar/js/engine-choice.js';
import { checkRequestToInput } from '../src/envoy/check-request.js';
import { generateMeshBundle } from './generate-bundle.js';
import { checkRequest, distinctShapes } from './requests.js';

export interface EngineRss {
  engine: EngineName;
  rssAtStartMB: number;
  rssCompiledMB: number;
  rssAfterMissesMB: number;
  /** Highest RSS sampled (every 20 ms) while the compile ran, the worker's Cedar included. */
  rssPeakDuringCompileMB: number;
  heapUsedMB: number;
  compileMs: number;
  workerMs: number;
  longestStepMs: number;
  longestStepPhase: string;
  /** Longest event-loop delay seen while compiling (histogram at 1 ms resolution). */
  loopDelayMaxMs: number;
  policies: number;
  preparsedChunks: number;
  misses: number;
  /** Whether this thread ever loaded Cedar's wasm (the JS engine with no fallback should not). */
  wasmLoadedInServingThread: boolean;
}

const mb = (n: number): number => n / 1e6;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

export async function engineRss(engine: EngineName, services = 100): Promise<EngineRss> {
  gc();
  const atStart = process.memoryUsage().rss;
  const files = new Map([...generateMeshBundle({ services, withTimeRule: true })].map(([k, v]) => [k, Buffer.from(v)]));
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
  const { bundle } = compiled;
  const set = bundle.policySet;
  gc();
  const rssCompiled = process.memoryUsage().rss;
  const inputs = distinctShapes(4000, services, 11_000_000).map((s) => {
    const r = checkRequestToInput(checkRequest(s, services));
    if (!r.ok) throw new Error(r.message);
    return r.input;
  });
  for (const input of inputs) authorizeInput(input, bundle, 'id');
  gc();
  const after = process.memoryUsage();
  return {
    engine,
    rssAtStartMB: mb(atStart),
    rssCompiledMB: mb(rssCompiled),
    rssAfterMissesMB: mb(after.rss),
    rssPeakDuringCompileMB: mb(peak),
    heapUsedMB: mb(after.heapUsed),
    compileMs,
    workerMs: compiled.workerMs,
    longestStepMs: compiled.longestStepMs,
    longestStepPhase: compiled.longestStepPhase,
    // The histogram's max includes its own 1 ms resolution.
    loopDelayMaxMs: Math.max(0, delay.max / 1e6 - 1),
    policies: set.policies.size,
    preparsedChunks: set.slices.chunkCount,
    misses: inputs.length,
    wasmLoadedInServingThread: cedarWasmLoaded(),
  };
}

export function formatEngineRss(r: EngineRss): string {
  const n = (x: number): string => x.toFixed(0);
  return (
    `engine ${r.engine}: RSS ${n(r.rssAtStartMB)} MB at start, ${n(r.rssCompiledMB)} MB compiled (${r.policies} policies, ${r.preparsedChunks} preparsed chunks), ` +
    `${n(r.rssAfterMissesMB)} MB after ${r.misses} distinct misses (heap used ${n(r.heapUsedMB)} MB); peak ${n(r.rssPeakDuringCompileMB)} MB while compiling; ` +
    `compile ${n(r.compileMs)} ms (worker ${n(r.workerMs)} ms), longest step ${r.longestStepMs.toFixed(1)} ms (${r.longestStepPhase}), ` +
    `longest loop stall ${r.loopDelayMaxMs.toFixed(1)} ms; Cedar's wasm loaded in the serving thread: ${r.wasmLoadedInServingThread ? 'yes' : 'no'}`
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const engine = (process.argv[2] ?? 'js') as EngineName;
  process.stdout.write(`${formatEngineRss(await engineRss(engine))}\n`);
}
