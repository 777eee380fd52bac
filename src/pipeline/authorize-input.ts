/**
 * The pipeline's parse and engine stages:
 *   CheckRequest → RequestModel, and RequestModel + principal + context fields → Cedar request → EngineResult → Decision.
 * decide-check.ts runs them with identity, rate limits and deadlines around them;
 * tests and `authz bundle test` call them directly where only the policies matter.
 *
 * A request evaluates only its slice (the policies whose scope can match its
 * action and resource), with a context and entities cut to what that slice
 * reads, and, when a cache is given, the answer is looked up by exactly those
 * inputs first. All three are exact: see cedar/slicing.ts, cedar/projection.ts, cache/cache-key.ts.
 */
import { randomUUID } from 'node:crypto';
import type { DecisionCache } from '../cache/decision-cache.js';
import type { Decision } from '../decision.js';
import { checkRequestToInput, type InputOptions } from '../envoy/check-request.js';
import type { InputResult, RequestModel } from '../envoy/request-model.js';
import type { HostMismatch } from '../envoy/target-service.js';
import type { WireCheckRequest } from '../envoy/wire-types.js';
import { actionIdFor, inputToEngineRequest, type CedarRequest } from '../pipeline/cedar-request.js';
import type { CedarValueJson } from '../cedar/cedar-wasm.js';
import type { ActiveBundle } from '../bundle/active-bundle.js';
import { denyFor, engineResultToDecision } from '../pipeline/engine-decision.js';
import { decide, type CacheOutcome, type EngineOutcome } from '../cedar/engine.js';
import type { EngineResult } from '../cedar/evaluate.js';
import { workloadPrincipal, type PrincipalRef } from '../context/principal.js';
import type { ContextFields } from '../context/context-fields.js';
import { serviceDirectoryFor } from '../context/service-directory.js';

export interface Authorization {
  readonly decision: Decision;
  readonly input?: RequestModel;
  /** What Cedar evaluated: the projected context and the entities it can reach (absent on a cache hit). */
  readonly cedarRequest?: CedarRequest;
  /** The whole context of the request, before projection, also on a cache hit (for explaining a decision; what allow effects' templates read). */
  readonly context?: Record<string, CedarValueJson>;
  readonly engine?: EngineResult;
  /** Who asked for what, also on a cache hit (for the decision log). */
  readonly target?: { principal: string; action: string; resource: string };
  /** What the decision cache did, when one was given: answered, missed, or could not be used (volatile inputs). */
  readonly cache?: CacheOutcome;
  /** The principal Cedar was asked about (what allow effects' templates read). */
  readonly principal?: PrincipalRef;
  /** Both names, when the request was refused as a host_mismatch. */
  readonly mismatch?: HostMismatch;
}

export type { CacheOutcome };

export interface AuthorizeOptions {
  /** The end-user principal the enrichers found; the workload's (or Anonymous) otherwise. */
  principal?: PrincipalRef;
  /** Server-computed context fields (lists, risk, load, hour, weekday); computed with defaults otherwise. */
  fields?: ContextFields;
  /** Decision cache; results are stored only for slices that read no volatile field. */
  cache?: DecisionCache<EngineResult>;
  /** Clock for cache expiry. */
  nowMs?: () => number;
}

export function authorizeInput(
  input: RequestModel,
  set: ActiveBundle | null,
  decisionId: string = randomUUID(),
  options: AuthorizeOptions = {},
): Authorization {
  if (!set) return { decision: denyFor('no_policy_set', 'no policy set is active yet', null, decisionId), input };
  const principal = options.principal ?? workloadPrincipal(input.source.principal);
  const request = inputToEngineRequest(input, set, principal, options.fields);
  const target = {
    principal: `${principal.type}::"${principal.id}"`,
    action: request.action.id,
    resource: input.service,
  };
  let outcome: EngineOutcome;
  try {
    outcome = decide(set.policySet, request, { cache: options.cache, nowMs: options.nowMs, base: 'envoy' });
  } catch (err) {
    return {
      decision: denyFor(
        'evaluation_error',
        `policy evaluation failed: ${(err as Error).message}`,
        set.version,
        decisionId,
      ),
      input,
      context: request.context,
      target,
    };
  }
  const { result, cedarRequest, cache } = outcome;
  return {
    decision: engineResultToDecision(set.policySet, result, decisionId),
    input,
    cedarRequest,
    context: request.context,
    engine: result,
    target,
    cache,
    principal,
  };
}

/** The pipeline without end-user identity or server context (workload principal, no load, no risk). */
export function authorizeCheckRequest(
  req: WireCheckRequest,
  set: ActiveBundle | null,
  options?: Partial<InputOptions>,
  authorizeOptions?: AuthorizeOptions,
): Authorization {
  const decisionId = randomUUID();
  const result = readCheckRequest(req, set, options);
  if (!result.ok) return refusedInput(result, set, decisionId);
  return authorizeInput(result.input, set, decisionId, authorizeOptions);
}

/** CheckRequest → RequestModel with the set's way of naming services (bundle.yaml `services:`, gateways, frontProxy). */
export function readCheckRequest(
  req: WireCheckRequest,
  set: ActiveBundle | null,
  options?: Partial<InputOptions>,
): InputResult {
  return checkRequestToInput(req, {
    nowMs: options?.nowMs ?? Date.now,
    targets: options?.targets ?? serviceDirectoryFor(set),
    bodyLimits: options?.bodyLimits,
  });
}

/** The deny for a request refused before evaluation; a refused target keeps the request and both names for the log. */
export function refusedInput(
  result: Extract<InputResult, { ok: false }>,
  set: ActiveBundle | null,
  decisionId: string,
): Authorization {
  const decision = denyFor(result.reason, result.message, set?.version ?? null, decisionId);
  const input = result.input;
  if (!input) return { decision };
  const p = workloadPrincipal(input.source.principal);
  const target = { principal: `${p.type}::"${p.id}"`, action: actionIdFor(input), resource: input.service };
  return result.mismatch ? { decision, input, target, mismatch: result.mismatch } : { decision, input, target };
}
