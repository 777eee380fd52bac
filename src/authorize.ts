/**
 * The pipeline, end to end, without any transport:
 *   CheckRequest → RequestModel → identity + context fields → Cedar request → EngineResult → Decision.
 * Used by the gRPC server and by `authz check`, so both answer identically.
 */
import { randomUUID } from 'node:crypto';
import type { Decision } from './decision.js';
import { checkRequestToInput, type InputOptions } from './envoy/check-request.js';
import type { RequestModel } from './envoy/request-model.js';
import type { WireCheckRequest } from './envoy/wire-types.js';
import { inputToCedarRequest, type CedarRequest } from './cedar/cedar-request.js';
import type { CompiledPolicySet } from './cedar/compile.js';
import { denyFor, engineResultToDecision } from './cedar/decide.js';
import { evaluate, type EngineResult } from './cedar/evaluate.js';
import type { PrincipalRef } from './cedar/principal.js';
import type { ContextFields } from './context/context-fields.js';
import type { IdentityOutcome } from './context/jwt-identity.js';
import { RequestEnricher } from './context/request-enricher.js';

export interface Authorization {
  decision: Decision;
  input?: RequestModel;
  cedarRequest?: CedarRequest;
  engine?: EngineResult;
}

/** What the enrichers found: the end-user principal (else the workload's) and the extra context fields. */
export interface Enrichment {
  principal?: PrincipalRef;
  fields?: ContextFields;
}

export function authorizeInput(input: RequestModel, set: CompiledPolicySet | null, decisionId: string = randomUUID(), enrichment: Enrichment = {}): Authorization {
  if (!set) return { decision: denyFor('no_policy_set', 'no policy set is active yet', null, decisionId), input };
  const cedarRequest = inputToCedarRequest(input, set, enrichment.principal, enrichment.fields);
  let engine: EngineResult;
  try {
    engine = evaluate(set, cedarRequest);
  } catch (err) {
    return { decision: denyFor('evaluation_error', `policy evaluation failed: ${(err as Error).message}`, set.version, decisionId), input, cedarRequest };
  }
  return { decision: engineResultToDecision(set, engine, decisionId), input, cedarRequest, engine };
}

/** The pipeline without end-user identity or server context (workload principal, no load, no risk). */
export function authorizeCheckRequest(req: WireCheckRequest, set: CompiledPolicySet | null, options?: InputOptions): Authorization {
  const decisionId = randomUUID();
  const result = checkRequestToInput(req, options);
  if (!result.ok) return { decision: denyFor(result.reason, result.message, set?.version ?? null, decisionId) };
  return authorizeInput(result.input, set, decisionId);
}

/**
 * The full pipeline with identity and context. Synchronous unless a bearer
 * token has to be verified for the first time (then the answer is a promise).
 */
export function authorizeRequest(
  req: WireCheckRequest,
  set: CompiledPolicySet | null,
  enricher: RequestEnricher = RequestEnricher.NONE,
  options?: InputOptions,
): Authorization | Promise<Authorization> {
  const decisionId = randomUUID();
  const result = checkRequestToInput(req, options);
  if (!result.ok) return { decision: denyFor(result.reason, result.message, set?.version ?? null, decisionId) };
  const input = result.input;
  if (!set) return authorizeInput(input, set, decisionId);
  const identity = enricher.identify(input);
  if (identity instanceof Promise) return identity.then((outcome) => authorizeIdentified(input, set, outcome, enricher, decisionId));
  return authorizeIdentified(input, set, identity, enricher, decisionId);
}

function authorizeIdentified(input: RequestModel, set: CompiledPolicySet, identity: IdentityOutcome, enricher: RequestEnricher, decisionId: string): Authorization {
  if (identity.kind === 'rejected') {
    // A bad token is a 401 before any policy runs: not a crash, and not silently anonymous.
    const decision = denyFor(identity.reason, identity.message, set.version, decisionId);
    if (identity.wwwAuthenticate) decision.headers['www-authenticate'] = identity.wwwAuthenticate;
    return { decision, input };
  }
  const principal = identity.kind === 'user' ? identity.principal : undefined;
  const auth = authorizeInput(input, set, decisionId, { principal, fields: enricher.fields(input, set) });
  const challenge = enricher.challenge;
  if (auth.decision.status === 401 && challenge && !auth.decision.headers['www-authenticate']) {
    auth.decision.headers['www-authenticate'] = challenge;
  }
  return auth;
}
