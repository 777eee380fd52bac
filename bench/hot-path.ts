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
import { actionIdFor, inputToCedarRequest, inputToEngineRequest, RESOURCE_TYPE } from '../src/pipeline/cedar-request.js';
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

export async function hotPathCosts(services = 100): Promise<{ stages: StageCost[]; cedar: StageCost[]; policies: number }> {
  const files = new Map([...generateMeshBundle({ services, withTimeRule: true })].map(([k, v]) => [k, Buffer.from(v)]));
  const { bundle } = await compileBundleInChunks(filesToPolicySetSource(files, 'hot-path'));
  const set = bundle.policySet;
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
  const logger = createLogger({ level: 'info', destination: path.join(mkdtempSync(path.join(tmpdir(), 'hot-path-')), 'decisions.log') });
  const decisionLog = new DecisionLog(logger, true);

  const distinct = distinctShapes(4000, services, 11_000_000).map((s) => {
    const r = checkRequestToInput(checkRequest(s, services));
    if (!r.ok) throw new Error(r.message);
    return r.input;
  });

  const stages: StageCost[] = [
    { stage: 'decode the CheckRequest (grpc-js + protobufjs)', microseconds: measure(5000, () => svc.requestDeserialize(wire)) },
    { stage: 'CheckRequest → request model', microseconds: measure(5000, () => checkRequestToInput(decoded)) },
    { stage: 'pipeline, cache hit (slice, projection, key, lookup, decision)', microseconds: measure(5000, () => authorizeInput(input, bundle, 'id', { cache })) },
    { stage: 'pipeline, cache miss (distinct requests, Cedar on the slice)', microseconds: measure(distinct.length, (i) => authorizeInput(distinct[i], bundle, 'id'), 3) },
    { stage: 'decision → CheckResponse', microseconds: measure(5000, () => decisionToCheckResponse(decision)) },
    { stage: 'encode the CheckResponse', microseconds: measure(5000, () => svc.responseSerialize(response)) },
    { stage: 'decision log line (pino, headers, file)', microseconds: measure(5000, () => decisionLog.write({ decision, input, principal: 'p', action: 'GET', resource: 'svc', durationMs: 0.1 })) },
  ];

  // What slicing and projection save on one Cedar call (the repeated request's slice).
  const principal = workloadPrincipal(input.source.principal);
  const slice = set.slices.sliceFor({ type: 'Action', id: actionIdFor(input) }, { type: RESOURCE_TYPE, id: input.service });
  const full = inputToCedarRequest(input, bundle, principal);
  const lean = decide(set, inputToEngineRequest(input, bundle, principal), { base: 'envoy' }).cedarRequest!;
  void set.psetId; // preparse the whole set outside the timing
  const cedar: StageCost[] = [
    { stage: `whole set (${set.policies.size} policies), full request`, microseconds: measure(20, () => evaluate(set, full, set.psetId), 3) },
    { stage: `slice (${slice.matching.length} policies), full request`, microseconds: measure(2000, () => evaluateSlice(set, full, slice)) },
    { stage: `slice, projected request (context ${JSON.stringify(lean.context).length} B vs ${JSON.stringify(full.context).length} B, ${lean.entities.length} vs ${full.entities.length} entities)`, microseconds: measure(2000, () => evaluateSlice(set, lean, slice)) },
  ];
  await flushLogger(logger);
  set.retire();
  return { stages, cedar, policies: set.policies.size };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await hotPathCosts();
  for (const s of [...r.stages, ...r.cedar]) process.stdout.write(`${s.microseconds.toFixed(1).padStart(9)} µs  ${s.stage}\n`);
}
