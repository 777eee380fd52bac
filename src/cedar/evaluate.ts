/**
 * Evaluate one Cedar request against a compiled set. Knows Cedar, not gRPC.
 */
import { cedar, type CedarValueJson, type EntityJson } from './cedar-wasm.js';
import type { CompiledPolicySet } from './compile.js';
import { formatCedarErrors } from './compile.js';
import type { SlicePart } from './slicing.js';
import type { EngineResult } from './engine-result.js';

/** A request as it crosses into Cedar. */
export interface CedarRequest {
  principal: { type: string; id: string };
  action: { type: string; id: string };
  resource: { type: string; id: string };
  context: Record<string, CedarValueJson>;
  entities: EntityJson[];
}

export type { EngineResult };

export class EvaluationError extends Error {}

export function evaluate(set: CompiledPolicySet, req: CedarRequest, psetId: string = set.psetId): EngineResult {
  const answer = cedar.statefulIsAuthorized({
    principal: req.principal,
    action: req.action,
    resource: req.resource,
    context: req.context,
    entities: req.entities,
    preparsedPolicySetId: psetId,
  });
  if (answer.type === 'failure') throw new EvaluationError(formatCedarErrors(answer.errors).join('; '));
  const { decision, diagnostics } = answer.response;
  const determining = diagnostics.reason.slice();
  if (determining.length > 1) sortIdsByOrder(set, determining);
  const errors: EngineResult['errors'] = [];
  for (const e of diagnostics.errors) errors.push({ policyId: e.policyId, message: e.error.message });
  // Cedar lists errors in no fixed order (observed: two calls with the same request differ); set order keeps logs stable.
  if (errors.length > 1) sortErrorsByOrder(set, errors);
  return { decision, determining, errors };
}

/**
 * Evaluate a request against the slice that can apply to it. A slice in several
 * chunks is combined exactly as Cedar combines one set: any satisfied forbid
 * denies (and all satisfied forbids determine), else any satisfied permit allows
 * (and all satisfied permits determine), else deny with nothing determining.
 * Each chunk reports what makes that possible: an allowing chunk lists its
 * satisfied permits and has no satisfied forbid; a denying chunk lists its
 * satisfied forbids, and lists nothing only when none of its policies is satisfied.
 */
export function evaluateSlice(set: CompiledPolicySet, req: CedarRequest, slice: SlicePart): EngineResult {
  if (slice.matching.length === 0) return { decision: 'deny', determining: [], errors: [] };
  if (slice.psetIds.length === 1) return evaluate(set, req, slice.psetIds[0]);
  return combineResults(
    set,
    slice.psetIds.map((psetId) => evaluate(set, req, psetId)),
  );
}

/**
 * The answer of a set from the answers of disjoint parts of it (chunks, or a
 * slice's cached stable part and its volatile part), combined as Cedar
 * combines one set: see `evaluateSlice`. Ids and errors come out in set order;
 * the parts' arrays are not modified (a cached part's are shared).
 */
export function combineResults(set: CompiledPolicySet, parts: readonly EngineResult[]): EngineResult {
  const permits: string[] = [];
  const forbids: string[] = [];
  const errors: EngineResult['errors'] = [];
  let allowed = false;
  for (const part of parts) {
    for (const e of part.errors) errors.push(e);
    if (part.decision === 'allow') {
      allowed = true;
      for (const id of part.determining) permits.push(id);
    } else {
      for (const id of part.determining) forbids.push(id);
    }
  }
  sortErrorsByOrder(set, errors);
  if (forbids.length > 0) return { decision: 'deny', determining: sortIdsByOrder(set, forbids), errors };
  if (allowed) return { decision: 'allow', determining: sortIdsByOrder(set, permits), errors };
  return { decision: 'deny', determining: [], errors };
}

function orderOf(set: CompiledPolicySet, id: string): number {
  return set.policies.get(id)?.order ?? 0;
}

/** Insertion sort in place (these lists hold a handful of ids). */
function sortIdsByOrder(set: CompiledPolicySet, ids: string[]): string[] {
  for (let i = 1; i < ids.length; i++) {
    const id = ids[i];
    const o = orderOf(set, id);
    let j = i - 1;
    while (j >= 0 && orderOf(set, ids[j]) > o) {
      ids[j + 1] = ids[j];
      j--;
    }
    ids[j + 1] = id;
  }
  return ids;
}

function sortErrorsByOrder(set: CompiledPolicySet, errors: EngineResult['errors']): void {
  for (let i = 1; i < errors.length; i++) {
    const e = errors[i];
    const o = orderOf(set, e.policyId);
    let j = i - 1;
    while (j >= 0 && orderOf(set, errors[j].policyId) > o) {
      errors[j + 1] = errors[j];
      j--;
    }
    errors[j + 1] = e;
  }
}
