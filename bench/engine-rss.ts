/**
 * RSS of one process per engine: compile the 1,006-policy benchmark bundle as
 * the server does (Cedar's front end in a worker, the assembly in steps on
 * the serving thread), decide 4,000 distinct requests without a cache,
 * collect garbage, report. Also: the compile's wall time and longest step,
 * the longest event-loop stall while it ran (the loop-delay histogram, which
 * sees what the step timer cannot, e.g. reading the worker's answer), RSS at
 * its peak while the worker ran, and whether Cedar's wasm was ever loaded in
 * the serving thread.
 *
 * Each engine runs in a child process on the compiled code in dist/
 * (bench/servers/engine-rss.mjs), as the server runs: a TypeScript loader
 * would add its own thread and ~40 MB. Build first:
 *
 *   npm run build && npx tsx bench/engine-rss.ts [js|wasm]   (both when omitted)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { EngineName } from '../src/cedar/js/engine-choice.js';
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
  /** CPU time of the costliest step (null for builds before it was measured). */
  longestStepCpuMs: number | null;
  longestStepPhase: string;
  /** Longest event-loop delay seen while compiling (histogram at 1 ms resolution). */
  loopDelayMaxMs: number;
  policies: number;
  preparsedChunks: number;
  misses: number;
  /** Whether this thread ever loaded Cedar's wasm (the JS engine with no fallback should not). */
  wasmLoadedInServingThread: boolean;
}

const CHILD = path.join(import.meta.dirname, 'servers', 'engine-rss.mjs');

/** One engine's figures, measured in a fresh child process on dist/. */
export function engineRss(engine: EngineName, services = 100, misses = 4000): EngineRss {
  const work = mkdtempSync(path.join(tmpdir(), 'engine-rss-'));
  try {
    const bundle = path.join(work, 'bundle.json');
    const requests = path.join(work, 'requests.json');
    writeFileSync(bundle, JSON.stringify(Object.fromEntries(generateMeshBundle({ services, withTimeRule: true }))));
    writeFileSync(
      requests,
      JSON.stringify(distinctShapes(misses, services, 11_000_000).map((s) => checkRequest(s, services))),
    );
    const out = execFileSync(process.execPath, ['--expose-gc', CHILD, engine, bundle, requests], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    return JSON.parse(out.trim().split('\n').pop()!) as EngineRss;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function formatEngineRss(r: EngineRss): string {
  const n = (x: number): string => x.toFixed(0);
  return (
    `engine ${r.engine}: RSS ${n(r.rssAtStartMB)} MB at start, ${n(r.rssCompiledMB)} MB compiled (${r.policies} policies, ${r.preparsedChunks} preparsed chunks), ` +
    `${n(r.rssAfterMissesMB)} MB after ${r.misses} distinct misses (heap used ${n(r.heapUsedMB)} MB); peak ${n(r.rssPeakDuringCompileMB)} MB while compiling; ` +
    `compile ${n(r.compileMs)} ms (worker ${n(r.workerMs)} ms), longest step ${r.longestStepMs.toFixed(1)} ms (${r.longestStepPhase}${r.longestStepCpuMs === null ? '' : `; most CPU in one step ${r.longestStepCpuMs.toFixed(1)} ms`}), ` +
    `longest loop stall ${r.loopDelayMaxMs.toFixed(1)} ms; Cedar's wasm loaded in the serving thread: ${r.wasmLoadedInServingThread ? 'yes' : 'no'}`
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const engines = (process.argv[2] ? [process.argv[2]] : ['js', 'wasm']) as EngineName[];
  for (const engine of engines) process.stdout.write(`${formatEngineRss(engineRss(engine))}\n`);
}
