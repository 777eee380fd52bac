/**
 * Where a check's time goes, stage by stage, in one process (no transport, no
 * client): decoding the request, the pipeline on a cache hit and on a miss,
 * shaping and encoding the answer, the decision log line. And what slicing
 * and projection save: one Cedar call against the whole set with the full
 * request, against the request's slice with the full request, and against the
 * slice with the projected request.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { authorizeInput } from '../src/pipeline/authorize-input.js';
import { BoundedTtlCache } from '../src/cache/decision-cache.js';
import { filesToPolicySetSource } from '../src/bundle/format/bundle-files.js';
import {
  actionIdFor,
  inputToCedarRequest,
  inputToEngineRequest,
  RESOURCE_TYPE,
} from '../src/pipeline/cedar-request.js';
import { decide } from '../src/cedar/engine.js';
import { compileBundleInChunks } from '../src/bundle/active-bundle.js';
import { evaluate, evaluateSlice, type EngineResult } from '../src/cedar/evaluate.js';
import { workloadPrincipal } from '../src/context/principal.js';
import { checkRequestToInput } from '../src/envoy/check-request.js';
import { decisionToCheckResponse } from '../src/envoy/check-response.js';
import { authorizationService } from '../src/envoy/protos.js';
import type { WireCheckRequest } from '../src/envoy/wire-types.js';
import { createLogger, flushLogger } from '../src/observability/logger.js';
import { DecisionLog } from '../src/observability/decision-log.js';
import type { EngineName } from '../src/cedar/js/engine-choice.js';
import { fallbackCounts, resetFallbacks } from '../src/cedar/js/fallback.js';
import { cedarWasmLoaded, loadCedarWasm } from '../src/cedar/cedar-wasm.js';
import { generateMeshBundle } from './generate-bundle.js';
import { checkRequest, distinctShapes, REPEATED_SHAPE } from './requests.js';

export interface StageCost {
  stage: string;
  microseconds: number;
}

/** Median of `rounds` timings of `iterations` calls, in µs per call. */
function measure(iterations: number, fn: (i: number) => void, rounds = 5): number {
  for (let i = 0; i < Math.min(iterations, 200); i++) fn(i);
  const perCall: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t = performance.now();
    for (let i = 0; i < iterations; i++) fn(i);
    perCall.push(((performance.now() - t) * 1000) / iterations);
  }
  return perCall.sort((a, b) => a - b)[Math.floor(rounds / 2)];
}

/** Per engine: compile time of the bundle, cost of a miss, evaluations left to wasm during the run. */
export interface EngineCost {
  engine: EngineName;
  compileMs: number;
  longestCompileStepMs: number;
  /** CPU time of the costliest compile step (the wall-clock figure also counts what the machine gave others). */
  longestCompileStepCpuMs: number;
  /** Whether this (the serving) thread had loaded Cedar's wasm once this engine compiled and decided the misses. */
  wasmLoaded: boolean;
  missMicroseconds: number;
  /** Policies the JS engine does not compile (decided by wasm); 0 for wasm. */
  wasmPolicies: number;
  fallbacks: number;
}

export async function hotPathCosts(
  services = 100,
): Promise<{ stages: StageCost[]; cedar: StageCost[]; engines: EngineCost[]; policies: number }> {
  const files = new Map([...generateMeshBundle({ services, withTimeRule: true })].map(([k, v]) => [k, Buffer.from(v)]));
  const compileWith = async (engine: EngineName) => {
    const t = performance.now();
    const r = await compileBundleInChunks(filesToPolicySetSource(files, `hot-path-${engine}`), { engine });
    return {
      bundle: r.bundle,
      set: r.bundle.policySet,
      longestStepMs: r.longestStepMs,
      longestStepCpuMs: r.longestStepCpuMs,
      ms: performance.now() - t,
    };
  };
  const distinct = distinctShapes(4000, services, 11_000_000).map((s) => {
    const r = checkRequestToInput(checkRequest(s, services));
    if (!r.ok) throw new Error(r.message);
    return r.input;
  });

  // The JS engine first, before anything here loads Cedar's wasm: whether it needed wasm in this thread shows.
  const jsCompiled = await compileWith('js');
  const jsSet = jsCompiled.set;
  const jsBundle = jsCompiled.bundle;
  resetFallbacks();
  const jsMiss = measure(distinct.length, (i) => authorizeInput(distinct[i], jsBundle, 'id'), 3);
  const jsFallbacks = [...fallbackCounts().values()].reduce((a, b) => a + b, 0);
  const wasmLoadedByJs = cedarWasmLoaded();

  // As a server on --engine wasm does at start.
  loadCedarWasm();
  const wasmCompiled = await compileWith('wasm');
  const set = wasmCompiled.set;
  const bundle = wasmCompiled.bundle;
  const svc = authorizationService().service.Check;
  const wire = svc.requestSerialize(checkRequest(REPEATED_SHAPE, services)) as Buffer;
  const decoded = svc.requestDeserialize(wire) as WireCheckRequest;
  const res = checkRequestToInput(decoded);
  if (!res.ok) throw new Error(res.message);
  const input = res.input;
  const cache = new BoundedTtlCache<EngineResult>(100_000, 60_000);
  authorizeInput(input, bundle, 'id', { cache });
  const decision = authorizeInput(input, bundle, 'id', { cache }).decision;
  const response = decisionToCheckResponse(decision);
  const logger = createLogger({
    level: 'info',
    destination: path.join(mkdtempSync(path.join(tmpdir(), 'hot-path-')), 'decisions.log'),
  });
  const decisionLog = new DecisionLog(logger, true);

  const wasmMiss = measure(distinct.length, (i) => authorizeInput(distinct[i], bundle, 'id'), 3);
  const engines: EngineCost[] = [
    {
      engine: 'wasm',
      compileMs: wasmCompiled.ms,
      longestCompileStepMs: wasmCompiled.longestStepMs,
      longestCompileStepCpuMs: wasmCompiled.longestStepCpuMs,
      wasmLoaded: true,
      missMicroseconds: wasmMiss,
      wasmPolicies: 0,
      fallbacks: 0,
    },
    {
      engine: 'js',
      compileMs: jsCompiled.ms,
      longestCompileStepMs: jsCompiled.longestStepMs,
      longestCompileStepCpuMs: jsCompiled.longestStepCpuMs,
      wasmLoaded: wasmLoadedByJs,
      missMicroseconds: jsMiss,
      wasmPolicies: jsSet.js?.unsupported.size ?? 0,
      fallbacks: jsFallbacks,
    },
  ];

  const stages: StageCost[] = [
    {
      stage: 'decode the CheckRequest (grpc-js + protobufjs)',
      microseconds: measure(5000, () => svc.requestDeserialize(wire)),
    },
    { stage: 'CheckRequest → request model', microseconds: measure(5000, () => checkRequestToInput(decoded)) },
    {
      stage: 'pipeline, cache hit (slice, projection, key, lookup, decision)',
      microseconds: measure(5000, () => authorizeInput(input, bundle, 'id', { cache })),
    },
    { stage: 'pipeline, cache miss (distinct requests, wasm on the slice)', microseconds: wasmMiss },
    { stage: 'pipeline, cache miss (distinct requests, JS engine on the slice)', microseconds: jsMiss },
    { stage: 'decision → CheckResponse', microseconds: measure(5000, () => decisionToCheckResponse(decision)) },
    { stage: 'encode the CheckResponse', microseconds: measure(5000, () => svc.responseSerialize(response)) },
    {
      stage: 'decision log line (pino, headers, file)',
      microseconds: measure(5000, () =>
        decisionLog.write({ decision, input, principal: 'p', action: 'GET', resource: 'svc', durationMs: 0.1 }),
      ),
    },
  ];

  // What slicing and projection save on one Cedar call (the repeated request's slice).
  const principal = workloadPrincipal(input.source.principal);
  const slice = set.slices.sliceFor(
    { type: 'Action', id: actionIdFor(input) },
    { type: RESOURCE_TYPE, id: input.service },
  );
  const full = inputToCedarRequest(input, bundle, principal);
  const lean = decide(set, inputToEngineRequest(input, bundle, principal), { base: 'envoy' }).cedarRequest!;
  void set.psetId; // preparse the whole set outside the timing
  const cedar: StageCost[] = [
    {
      stage: `whole set (${set.policies.size} policies), full request`,
      microseconds: measure(20, () => evaluate(set, full, set.psetId), 3),
    },
    {
      stage: `slice (${slice.matching.length} policies), full request`,
      microseconds: measure(2000, () => evaluateSlice(set, full, slice)),
    },
    {
      stage: `slice, projected request (context ${JSON.stringify(lean.context).length} B vs ${JSON.stringify(full.context).length} B, ${lean.entities.length} vs ${full.entities.length} entities)`,
      microseconds: measure(2000, () => evaluateSlice(set, lean, slice)),
    },
  ];
  await flushLogger(logger);
  set.retire();
  jsSet.retire();
  return { stages, cedar, engines, policies: set.policies.size };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await hotPathCosts();
  for (const s of [...r.stages, ...r.cedar])
    process.stdout.write(`${s.microseconds.toFixed(1).padStart(9)} µs  ${s.stage}\n`);
  for (const e of r.engines) {
    process.stdout.write(
      `engine ${e.engine}: miss ${e.missMicroseconds.toFixed(1)} µs, compile of ${r.policies} policies ${e.compileMs.toFixed(0)} ms (longest step ${e.longestCompileStepMs.toFixed(1)} ms, most CPU in one step ${e.longestCompileStepCpuMs.toFixed(1)} ms), policies left to wasm ${e.wasmPolicies}, fallbacks ${e.fallbacks}, Cedar's wasm loaded in the serving thread: ${e.wasmLoaded ? 'yes' : 'no'}\n`,
    );
  }
}
