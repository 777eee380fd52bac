/**
 * The one decision pipeline, shared by the gRPC and HTTP ext_authz servers
 * (through the Check handler) and `authz check`:
 *
 *   parse → (no set? stale? deadline?) → identity → (deadline?) → rate limits → Cedar → (deadline?)
 *
 * It returns one outcome value: the decision before enforcement plus what the
 * response, the log and the metrics need. Enforcement (fail mode, dry-run) and
 * the CheckResponse are respond.ts; recording and logging stay with the caller.
 *
 * It answers synchronously except when a bearer token must first be verified
 * (a promise then): the common case pays no microtask. It never throws and its
 * promise never rejects: anything unexpected becomes an evaluation_error
 * outcome carrying the exception, answered by the route's fail mode.
 */
import { randomUUID } from 'node:crypto';
import type { DecisionCache } from '../cache/decision-cache.js';
import type { ActiveBundle } from '../bundle/active-bundle.js';
import { denyFor } from '../pipeline/engine-decision.js';
import type { EngineResult } from '../cedar/evaluate.js';
import { workloadPrincipal, type PrincipalRef } from '../context/principal.js';
import type { IdentityOutcome } from '../context/jwt-identity.js';
import { RequestEnricher } from '../context/request-enricher.js';
import type { Decision } from '../decision.js';
import { deadlineMessage, epochNowMs, NO_DEADLINE, withinDeadline, type Deadline } from '../enforcement/deadline.js';
import type { InputOptions } from '../envoy/check-request.js';
import { refusalOf, type RequestRefusal } from '../envoy/check-request-limits.js';
import type { RequestModel } from '../envoy/request-model.js';
import type { WireCheckRequest } from '../envoy/wire-types.js';
import { rateLimitDecision, type RateLimiter, type RateLimitHit } from '../ratelimit/rate-limiter.js';
import { authorizeInput, readCheckRequest, refusedInput, type Authorization } from './authorize-input.js';

/** One check's result before enforcement. Nothing downstream changes it. */
export interface CheckOutcome extends Authorization {
  /** The rule whose bucket was empty, when the answer is a 429. */
  readonly rateLimit?: RateLimitHit;
  /** An exception the pipeline caught (a bug, not an input problem): the caller logs it. */
  readonly internalError?: unknown;
}

/** What the pipeline needs besides the request and the set; built once per server (or per `authz check`). */
export interface PipelineDeps {
  /** End-user identity and context fields; without it, the workload principal and plain context. */
  readonly enricher?: RequestEnricher;
  /** bundle.yaml rate limits; without it none are applied (tests of the policies alone). */
  readonly limiter?: RateLimiter;
  /** The clock rate limit buckets read; `authz check` fixes it so its assumed earlier requests land at one instant. */
  readonly rateLimitNowMs?: () => number;
  /** Decision cache; results are stored only for slices that read no volatile field. */
  readonly cache?: DecisionCache<EngineResult>;
  /** --max-policy-age: while `stale`, every check is answered by the fail mode. */
  readonly staleGuard?: { readonly stale: boolean; message(version: string): string };
  /** Parse options (request body limits); the same object every check. */
  readonly inputOptions?: Partial<InputOptions>;
  /** `--decision-timeout` in ms, for the message of a deadline deny (0: none of our own). */
  readonly decisionTimeoutMs?: number;
}

/**
 * @param deadline when the answer stops being useful (decisionDeadline()); none by default
 * @param decisionId the id the answer and the log line carry
 */
export function decideCheck(
  request: WireCheckRequest,
  set: ActiveBundle | null,
  deps: PipelineDeps,
  deadline: Deadline = NO_DEADLINE,
  decisionId: string = randomUUID(),
): CheckOutcome | Promise<CheckOutcome> {
  let input: RequestModel | undefined;
  try {
    const refusal = refusalOf(request);
    if (refusal) return { decision: denyFor(refusal.reason, refusal.message, set?.version ?? null, decisionId) };
    const parsed = readCheckRequest(request, set, deps.inputOptions);
    if (!parsed.ok) return refusedInput(parsed, set, decisionId);
    input = parsed.input;
    if (!set) return { decision: denyFor('no_policy_set', 'no policy set is active yet', null, decisionId), input };
    const guard = deps.staleGuard;
    if (guard?.stale)
      return { decision: denyFor('policy_stale', guard.message(set.version), set.version, decisionId), input };
    if (epochNowMs() >= deadline.atMs) return { decision: deadlineDeny(deadline, deps, set, decisionId), input };
    const identity = (deps.enricher ?? RequestEnricher.NONE).identify(input);
    if (identity instanceof Promise) {
      const known = input;
      // Waiting for an issuer's keys ends at the deadline; then the route's fail mode answers
      // (and nothing more is done for this request when the keys arrive).
      return withinDeadline<IdentityOutcome | null>(identity, deadline, () => null).then(
        (o) =>
          o === null
            ? { decision: deadlineDeny(deadline, deps, set, decisionId), input: known }
            : identified(known, set, o, deps, deadline, decisionId),
        (err: unknown) => failed(err, known, set, decisionId),
      );
    }
    return identified(input, set, identity, deps, deadline, decisionId);
  } catch (err) {
    // Parsing is written never to throw (a property test holds it to that); if it does, fail by the route's mode.
    return failed(err, input, set, decisionId);
  }
}

/** A request refused before it could be decoded (over a limit, not protobuf, larger than the transport accepts). */
export function refusedOutcome(
  refusal: RequestRefusal,
  set: ActiveBundle | null,
  decisionId: string = randomUUID(),
): CheckOutcome {
  return { decision: denyFor(refusal.reason, refusal.message, set?.version ?? null, decisionId) };
}

/** The outcome for an exception that escaped everything else; the caller logs `internalError`. */
export function failed(
  err: unknown,
  input: RequestModel | undefined,
  set: ActiveBundle | null,
  decisionId: string,
): CheckOutcome {
  return {
    decision: denyFor('evaluation_error', 'internal error while deciding', set?.version ?? null, decisionId),
    input,
    internalError: err,
  };
}

function identified(
  input: RequestModel,
  set: ActiveBundle,
  identity: IdentityOutcome,
  deps: PipelineDeps,
  deadline: Deadline,
  decisionId: string,
): CheckOutcome {
  try {
    if (identity.kind === 'rejected') {
      // A bad token is a 401 before any policy runs: not a crash, and not silently anonymous.
      const decision = denyFor(identity.reason, identity.message, set.version, decisionId);
      if (identity.wwwAuthenticate) decision.headers['www-authenticate'] = identity.wwwAuthenticate;
      return { decision, input };
    }
    // The rate limiter sees the principal Cedar is asked about (a verified user is not Anonymous).
    const principal: PrincipalRef =
      identity.kind === 'user' ? identity.principal : workloadPrincipal(input.source.principal);
    const now = epochNowMs();
    // A token verification may have waited on the issuer's keys.
    if (now >= deadline.atMs) return { decision: deadlineDeny(deadline, deps, set, decisionId), input, principal };
    const limiter = deps.limiter;
    if (limiter) {
      const hit = limiter.check(set.settings, input, principal, deps.rateLimitNowMs ? deps.rateLimitNowMs() : now);
      if (hit) return { decision: rateLimitDecision(hit, set.version, decisionId), input, principal, rateLimit: hit };
    }
    const enricher = deps.enricher ?? RequestEnricher.NONE;
    const auth = authorizeInput(input, set, decisionId, {
      principal,
      fields: enricher.fields(input, set),
      cache: deps.cache,
    });
    // Evaluation cannot be interrupted; if it ran past the deadline, its answer is too late to use.
    if (epochNowMs() >= deadline.atMs)
      return { ...auth, principal, decision: deadlineDeny(deadline, deps, set, decisionId) };
    const challenge = enricher.challenge;
    if (auth.decision.status === 401 && challenge && !auth.decision.headers['www-authenticate']) {
      // RFC 9110: every 401 carries a challenge, also one a policy chose.
      return { ...auth, principal, decision: withHeader(auth.decision, 'www-authenticate', challenge) };
    }
    // authorizeInput sets the principal on every path that reaches here but an engine failure.
    return auth.principal === principal ? auth : { ...auth, principal };
  } catch (err) {
    return failed(err, input, set, decisionId);
  }
}

function withHeader(decision: Decision, name: string, value: string): Decision {
  return { ...decision, headers: { ...decision.headers, [name]: value } };
}

function deadlineDeny(deadline: Deadline, deps: PipelineDeps, set: ActiveBundle, decisionId: string): Decision {
  return denyFor('deadline_exceeded', deadlineMessage(deadline, deps.decisionTimeoutMs ?? 0), set.version, decisionId);
}

/** True when the outcome is the engine's own answer in time, i.e. worth comparing with shadow rules. */
export function decidedByEngine(outcome: CheckOutcome): boolean {
  return outcome.engine !== undefined && outcome.decision.reason !== 'deadline_exceeded';
}
