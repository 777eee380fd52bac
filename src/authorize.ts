/**
 * The pipeline, end to end, without any transport:
 *   CheckRequest → RequestModel → identity + context fields → Cedar request → EngineResult → Decision.
 * Used by the gRPC server and by `authz check`, so both answer identically.
 *
 * A request evaluates only its slice (the policies whose scope can match its
 * action and resource), with a context and entities cut to what that slice
 * reads, and, when a cache is given, the answer is looked up by exactly those
 * inputs first. All three are exact: see slicing.ts, projection.ts, cache-key.ts.
 */
import { randomUUID } from 'node:crypto';
import type { DecisionCache } from './cache/decision-cache.js';
import { decisionCacheKey } from './cache/cache-key.js';
import type { Decision } from './decision.js';
import { checkRequestToInput, type InputOptions } from './envoy/check-request.js';
import type { InputResult, RequestModel } from './envoy/request-model.js';
import type { HostMismatch } from './envoy/target-service.js';
import type { WireCheckRequest } from './envoy/wire-types.js';
import { actionIdFor, buildEntities, RESOURCE_TYPE, requestContext, type CedarRequest } from './cedar/cedar-request.js';
import type { CompiledPolicySet } from './cedar/compile.js';
import { denyFor, engineResultToDecision } from './cedar/decide.js';
import { evaluateSlice, type EngineResult } from './cedar/evaluate.js';
import { workloadPrincipal, type PrincipalRef } from './cedar/principal.js';
import { contextKey, projectContext } from './cedar/projection.js';
import type { Slice } from './cedar/slicing.js';
import type { CedarValueJson } from './cedar/cedar-wasm.js';
import type { ContextFields } from './context/context-fields.js';
import type { IdentityOutcome } from './context/jwt-identity.js';
import { RequestEnricher } from './context/request-enricher.js';
import { serviceDirectoryFor } from './context/service-directory.js';

export interface Authorization {
  decision: Decision;
  input?: RequestModel;
  /** The request Cedar evaluated (absent on a cache hit). */
  cedarRequest?: CedarRequest;
  engine?: EngineResult;
  /** Who asked for what, also on a cache hit (for the decision log). */
  target?: { principal: string; action: string; resource: string };
  /** What the decision cache did, when one was given: answered, missed, or could not be used (volatile inputs). */
  cache?: CacheOutcome;
  /** The principal Cedar was asked about (what allow effects' templates read). */
  principal?: PrincipalRef;
  /** The request's whole Cedar context, also on a cache hit (what allow effects' templates read). */
  context?: Record<string, CedarValueJson>;
  /** Both names, when the request was refused as a host_mismatch. */
  mismatch?: HostMismatch;
}

export type CacheOutcome = 'hit' | 'miss' | 'uncacheable';

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

export function authorizeInput(input: RequestModel, set: CompiledPolicySet | null, decisionId: string = randomUUID(), options: AuthorizeOptions = {}): Authorization {
  if (!set) return { decision: denyFor('no_policy_set', 'no policy set is active yet', null, decisionId), input };
  const principal = options.principal ?? workloadPrincipal(input.source.principal);
  const actionId = actionIdFor(input);
  const target = { principal: `${principal.type}::"${principal.id}"`, action: actionId, resource: input.service };
  let slice: Slice;
  try {
    slice = set.slices.sliceFor(actionId, { type: RESOURCE_TYPE, id: input.service });
  } catch (err) {
    return { decision: denyFor('evaluation_error', `policy evaluation failed: ${(err as Error).message}`, set.version, decisionId), input, target };
  }
  const needs = slice.needs;
  // Body fields only where this slice can read them: reading and parsing a body costs, and unread ones are projected away anyway.
  const fullContext = requestContext(input, set, options.fields, slice.reads.context);

  const cache = slice.cacheable ? options.cache : undefined;
  let key = '';
  let now = 0;
  if (cache) {
    key = decisionCacheKey(set.version, principal, actionId, input.service, needs, contextKey(fullContext, slice.reads.context));
    now = (options.nowMs ?? Date.now)();
    const hit = cache.get(key, now);
    if (hit !== undefined) return { decision: engineResultToDecision(set, hit, decisionId), input, engine: hit, target, cache: 'hit', principal, context: fullContext };
  }
  const outcome: CacheOutcome | undefined = cache ? 'miss' : options.cache ? 'uncacheable' : undefined;

  const context = projectContext(fullContext, slice.reads.context);
  const cedarRequest: CedarRequest = {
    principal: { type: principal.type, id: principal.id },
    action: { type: 'Action', id: actionId },
    resource: { type: RESOURCE_TYPE, id: input.service },
    context,
    entities: buildEntities(set, principal, actionId, input.service, needs, set.leanEntities),
  };
  let engine: EngineResult;
  try {
    engine = evaluateSlice(set, cedarRequest, slice);
  } catch (err) {
    return { decision: denyFor('evaluation_error', `policy evaluation failed: ${(err as Error).message}`, set.version, decisionId), input, cedarRequest, target, cache: outcome, principal, context: fullContext };
  }
  if (cache) cache.set(key, freezeResult(engine), now);
  return { decision: engineResultToDecision(set, engine, decisionId), input, cedarRequest, engine, target, cache: outcome, principal, context: fullContext };
}

/** The pipeline without end-user identity or server context (workload principal, no load, no risk). */
export function authorizeCheckRequest(req: WireCheckRequest, set: CompiledPolicySet | null, options?: Partial<InputOptions>, authorizeOptions?: AuthorizeOptions): Authorization {
  const decisionId = randomUUID();
  const result = readCheckRequest(req, set, options);
  if (!result.ok) return refusedInput(result, set, decisionId);
  return authorizeInput(result.input, set, decisionId, authorizeOptions);
}

/** CheckRequest → RequestModel with the set's way of naming services (bundle.yaml `services:`, gateways, frontProxy). */
export function readCheckRequest(req: WireCheckRequest, set: CompiledPolicySet | null, options?: Partial<InputOptions>): InputResult {
  return checkRequestToInput(req, { nowMs: options?.nowMs ?? Date.now, targets: options?.targets ?? serviceDirectoryFor(set), bodyLimits: options?.bodyLimits });
}

/** The deny for a request refused before evaluation; a refused target keeps the request and both names for the log. */
export function refusedInput(result: Extract<InputResult, { ok: false }>, set: CompiledPolicySet | null, decisionId: string): Authorization {
  const decision = denyFor(result.reason, result.message, set?.version ?? null, decisionId);
  const input = result.input;
  if (!input) return { decision };
  const p = workloadPrincipal(input.source.principal);
  const target = { principal: `${p.type}::"${p.id}"`, action: actionIdFor(input), resource: input.service };
  return result.mismatch ? { decision, input, target, mismatch: result.mismatch } : { decision, input, target };
}

/** Every later hit shares the stored result (and decisions reference its arrays): make sharing safe. */
function freezeResult(r: EngineResult): EngineResult {
  Object.freeze(r.determining);
  Object.freeze(r.errors);
  return Object.freeze(r);
}

/**
 * The full pipeline with identity and context. Synchronous unless a bearer
 * token has to be verified for the first time (then the answer is a promise).
 */
export function authorizeRequest(
  req: WireCheckRequest,
  set: CompiledPolicySet | null,
  enricher: RequestEnricher = RequestEnricher.NONE,
  options?: Partial<InputOptions>,
): Authorization | Promise<Authorization> {
  const decisionId = randomUUID();
  const result = readCheckRequest(req, set, options);
  if (!result.ok) return refusedInput(result, set, decisionId);
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
