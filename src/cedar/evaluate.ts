/**
 * Evaluate one Cedar request against a compiled set. Knows Cedar, not gRPC.
 */
import { cedar } from './cedar-wasm.js';
import type { CedarRequest } from './cedar-request.js';
import type { CompiledPolicySet } from './compile.js';
import { formatCedarErrors } from './compile.js';
import type { Slice } from './slicing.js';

export interface EngineResult {
  decision: 'allow' | 'deny';
  /** Determining policy ids, in policy-set order. */
  determining: string[];
  /** Policies that errored during evaluation (Cedar skips them). */
  errors: { policyId: string; message: string }[];
}

export class EvaluationError extends Error {}

/** What Cedar answers when no policy applies: no permit, so deny, with nothing determining. */
const NOTHING_APPLIES: EngineResult = Object.freeze({ decision: 'deny', determining: [], errors: [] }) as EngineResult;

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
  const determining = diagnostics.reason.length > 1 ? sortByOrder(set, diagnostics.reason) : diagnostics.reason;
  const errors = diagnostics.errors.map((e) => ({ policyId: e.policyId, message: e.error.message }));
  // Cedar lists errors in no fixed order (observed: two calls with the same request differ); set order keeps logs stable.
  if (errors.length > 1) sortErrors(set, errors);
  return { decision, determining, errors };
}

function sortErrors(set: CompiledPolicySet, errors: EngineResult['errors']): void {
  errors.sort((a, b) => orderOf(set, a.policyId) - orderOf(set, b.policyId));
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
export function evaluateSlice(set: CompiledPolicySet, req: CedarRequest, slice: Slice): EngineResult {
  if (slice.matching.length === 0) return { ...NOTHING_APPLIES, determining: [], errors: [] };
  if (slice.psetIds.length === 1) return evaluate(set, req, slice.psetIds[0]);
  const permits: string[] = [];
  const forbids: string[] = [];
  const errors: EngineResult['errors'] = [];
  let allowed = false;
  for (const psetId of slice.psetIds) {
    const part = evaluate(set, req, psetId);
    for (const e of part.errors) errors.push(e);
    if (part.decision === 'allow') {
      allowed = true;
      for (const id of part.determining) permits.push(id);
    } else {
      for (const id of part.determining) forbids.push(id);
    }
  }
  sortErrors(set, errors);
  if (forbids.length > 0) return { decision: 'deny', determining: sortByOrder(set, forbids), errors };
  if (allowed) return { decision: 'allow', determining: sortByOrder(set, permits), errors };
  return { decision: 'deny', determining: [], errors };
}

function orderOf(set: CompiledPolicySet, id: string): number {
  return set.policies.get(id)?.order ?? 0;
}

function sortByOrder(set: CompiledPolicySet, ids: string[]): string[] {
  return [...ids].sort((a, b) => orderOf(set, a) - orderOf(set, b));
}
