/**
 * Evaluate one Cedar request against a compiled set. Knows Cedar, not gRPC.
 */
import { cedar } from './cedar-wasm.js';
import type { CedarRequest } from './cedar-request.js';
import type { CompiledPolicySet } from './compile.js';
import { formatCedarErrors } from './compile.js';

export interface EngineResult {
  decision: 'allow' | 'deny';
  /** Determining policy ids, in policy-set order. */
  determining: string[];
  /** Policies that errored during evaluation (Cedar skips them). */
  errors: { policyId: string; message: string }[];
}

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
  const determining = diagnostics.reason.length > 1 ? sortByOrder(set, diagnostics.reason) : diagnostics.reason;
  const errors = diagnostics.errors.map((e) => ({ policyId: e.policyId, message: e.error.message }));
  return { decision, determining, errors };
}

function sortByOrder(set: CompiledPolicySet, ids: string[]): string[] {
  return [...ids].sort((a, b) => (set.policies.get(a)?.order ?? 0) - (set.policies.get(b)?.order ?? 0));
}
