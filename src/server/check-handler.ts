/**
 * The Check handler: runs the pipeline against the active set inside the
 * safety controls, records the metric and the decision log line, and shapes
 * the CheckResponse. It never throws: anything unexpected becomes an
 * evaluation error, answered by the route's fail mode. It answers
 * synchronously except when a bearer token must first be verified.
 *
 *   parse → (no set? deadline?) → identity → rate limits → Cedar → (deadline?)
 *   → enforce (fail mode, dry-run) → answer; shadow evaluations after the answer.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { BodyLimits } from '../envoy/request-body.js';
import { authorizeInput, readCheckRequest, refusedInput, type Authorization } from '../authorize.js';
import type { ActivePolicySet } from '../bundle/active-policy-set.js';
import type { ActiveBundle } from '../bundle/active-bundle.js';
import type { DecisionCache } from '../cache/decision-cache.js';
import type { EngineResult } from '../cedar/evaluate.js';
import { denyFor } from '../pipeline/engine-decision.js';
import { ACTION_TYPE, RESOURCE_TYPE } from '../pipeline/cedar-request.js';
import { workloadPrincipal, type PrincipalRef } from '../context/principal.js';
import { USER_TYPE } from '../context/jwt-claims.js';
import type { IdentityOutcome } from '../context/jwt-identity.js';
import { RequestEnricher } from '../context/request-enricher.js';
import { decisionDeadline, deadlineMessage, epochNowMs, withinDeadline, type Deadline } from '../enforcement/deadline.js';
import { enforceDecision, type Enforced } from '../enforcement/enforce.js';
import { routeSettings, type RouteDefaults } from '../enforcement/route-settings.js';
import { DEFAULT_SAFETY_OPTIONS, MAX_PENDING_SHADOW_JOBS, type SafetyOptions } from '../enforcement/safety-options.js';
import { applyAllowEffects } from '../envoy/allow-effects.js';
import { refusalOf, type RequestRefusal } from '../envoy/check-request-limits.js';
import { decisionToCheckResponse } from '../envoy/check-response.js';
import type { RequestModel } from '../envoy/request-model.js';
import type { WireCheckRequest, WireCheckResponse } from '../envoy/wire-types.js';
import type { DecisionLog } from '../observability/decision-log.js';
import type { AuthzMetrics } from '../observability/metrics.js';
import type { Tracing } from '../observability/tracing.js';
import { BucketStore } from '../ratelimit/bucket-store.js';
import type { FleetSize } from '../ratelimit/fleet-share.js';
import { RateLimiter, rateLimitDecision, type RateLimitHit } from '../ratelimit/rate-limiter.js';
import { hasShadowWork, runShadowJob, type ShadowJob, type ShadowResult } from '../shadow/shadow-evaluation.js';

export interface CheckHandlerDeps {
  policySet: ActivePolicySet;
  metrics: AuthzMetrics;
  decisionLog: DecisionLog;
  logger: Logger;
  /** End-user identity and context fields; without it, the workload principal and plain context. */
  enricher?: RequestEnricher;
  safety?: SafetyOptions;
  /** The shadow version from the bundle store, evaluated beside the active set. */
  shadowVersion?: ActivePolicySet;
  /** Decision cache; the composition root clears it on every swap. */
  cache?: DecisionCache<EngineResult>;
  /** Live servers of the fleet, for rate limit shares; a single server without it. */
  fleet?: FleetSize;
  /** OpenTelemetry; absent when tracing is off (then a Check pays one undefined check for it). */
  tracing?: Tracing;
  /** What a forwarded request body may cost before policies stop seeing it. */
  bodyLimits?: BodyLimits;
  /** --max-policy-age: while `stale`, every check is answered by the fail mode. */
  staleGuard?: { readonly stale: boolean; message(version: string): string };
}

/** One check's pipeline result, before enforcement. */
interface PipelineResult extends Authorization {
  principal?: PrincipalRef;
  rateLimit?: RateLimitHit;
  shadow?: ShadowJob;
}

export class CheckHandler {
  private readonly enricher: RequestEnricher;
  private readonly safety: SafetyOptions;
  private readonly limiter: RateLimiter;
  private pendingShadowJobs = 0;
  private defaultsFor: ActiveBundle | null | undefined;
  private defaults: RouteDefaults = { failMode: 'closed', dryRun: false };

  constructor(private readonly deps: CheckHandlerDeps) {
    this.enricher = deps.enricher ?? RequestEnricher.NONE;
    this.safety = deps.safety ?? DEFAULT_SAFETY_OPTIONS;
    this.limiter = new RateLimiter(new BucketStore(this.safety.rateLimitMaxKeys, () => deps.metrics.rateLimitEvictions.inc()), deps.fleet);
    deps.metrics.trackRateLimitKeys(() => this.limiter.buckets.size);
  }

  /** Rate limit buckets held now (for /safety). */
  get rateLimitKeys(): number {
    return this.limiter.buckets.size;
  }

  /** @param grpcDeadline `call.getDeadline()`: when Envoy stops waiting for this answer. */
  handle(request: WireCheckRequest, grpcDeadline?: Date | number): WireCheckResponse | Promise<WireCheckResponse> {
    const started = performance.now();
    const decisionId = randomUUID();
    const set = this.deps.policySet.current;
    const deadline = decisionDeadline(epochNowMs(), this.safety.decisionTimeoutMs, grpcDeadline);
    let out: PipelineResult | Promise<PipelineResult>;
    try {
      out = this.decide(request, set, deadline, decisionId);
    } catch (err) {
      // Parsing is written never to throw (a property test holds it to that); if it does, fail by the server's mode.
      out = this.failed(err, undefined, set, decisionId);
    }
    if (out instanceof Promise) {
      return out.then(
        (r) => this.finish(r, set, started, decisionId),
        (err: unknown) => this.finish(this.failed(err, undefined, set, decisionId), set, started, decisionId),
      );
    }
    return this.finish(out, set, started, decisionId);
  }

  /**
   * A request refused before it could be decoded (over a limit, not protobuf, or
   * larger than the transport accepts): a deny decision, logged and counted.
   */
  refuse(refusal: RequestRefusal): WireCheckResponse {
    const set = this.deps.policySet.current;
    const decisionId = randomUUID();
    return this.finish({ decision: denyFor(refusal.reason, refusal.message, set?.version ?? null, decisionId) }, set, performance.now(), decisionId);
  }

  /** A bug, not an input problem: keep the input (if any) so the route's fail mode applies, and say so loudly. */
  private failed(err: unknown, input: RequestModel | undefined, set: ActiveBundle | null, decisionId: string): PipelineResult {
    this.deps.logger.error({ err }, 'check failed unexpectedly');
    return { decision: denyFor('evaluation_error', 'internal error while deciding', set?.version ?? null, decisionId), input };
  }

  private decide(request: WireCheckRequest, set: ActiveBundle | null, deadline: Deadline, decisionId: string): PipelineResult | Promise<PipelineResult> {
    const refusal = refusalOf(request);
    if (refusal) return { decision: denyFor(refusal.reason, refusal.message, set?.version ?? null, decisionId) };
    const parsed = readCheckRequest(request, set, this.deps.bodyLimits ? { bodyLimits: this.deps.bodyLimits } : undefined);
    if (!parsed.ok) return refusedInput(parsed, set, decisionId);
    const input = parsed.input;
    if (!set) return { decision: denyFor('no_policy_set', 'no policy set is active yet', null, decisionId), input };
    const guard = this.deps.staleGuard;
    if (guard?.stale) return { decision: denyFor('policy_stale', guard.message(set.version), set.version, decisionId), input };
    try {
      if (epochNowMs() >= deadline.atMs) return { decision: this.deadlineDeny(deadline, set.version, decisionId), input };
      const identity = this.enricher.identify(input);
      if (identity instanceof Promise) {
        // Waiting for an issuer's keys ends at the deadline; then the route's fail mode answers
        // (and nothing more is done for this request when the keys arrive).
        return withinDeadline<IdentityOutcome | null>(identity, deadline, () => null).then(
          (o) => (o === null ? { decision: this.deadlineDeny(deadline, set.version, decisionId), input } : this.identified(input, set, o, deadline, decisionId)),
          (err: unknown) => this.failed(err, input, set, decisionId),
        );
      }
      return this.identified(input, set, identity, deadline, decisionId);
    } catch (err) {
      return this.failed(err, input, set, decisionId);
    }
  }

  private identified(input: RequestModel, set: ActiveBundle, identity: IdentityOutcome, deadline: Deadline, decisionId: string): PipelineResult {
    try {
      if (identity.kind === 'rejected') {
        // A bad token is a 401 before any policy runs: not a crash, and not silently anonymous.
        const decision = denyFor(identity.reason, identity.message, set.version, decisionId);
        if (identity.wwwAuthenticate) decision.headers['www-authenticate'] = identity.wwwAuthenticate;
        return { decision, input };
      }
      // The rate limiter sees the principal Cedar is asked about (a verified user is not Anonymous).
      const principal = identity.kind === 'user' ? identity.principal : workloadPrincipal(input.source.principal);
      const now = epochNowMs();
      // A token verification may have waited on the issuer's keys.
      if (now >= deadline.atMs) return { decision: this.deadlineDeny(deadline, set.version, decisionId), input, principal };
      const hit = this.limiter.check(set.settings, input, principal, now);
      if (hit) return { decision: rateLimitDecision(hit, set.version, decisionId), input, principal, rateLimit: hit };

      const auth: PipelineResult = authorizeInput(input, set, decisionId, { principal, fields: this.enricher.fields(input, set), cache: this.deps.cache });
      auth.principal = principal;
      const challenge = this.enricher.challenge;
      if (auth.decision.status === 401 && challenge && !auth.decision.headers['www-authenticate']) {
        auth.decision.headers['www-authenticate'] = challenge;
      }
      // Evaluation cannot be interrupted; if it ran past the deadline, its answer is too late to use.
      if (epochNowMs() >= deadline.atMs) return { ...auth, decision: this.deadlineDeny(deadline, set.version, decisionId) };
      if (auth.engine) {
        const shadowVersion = this.deps.shadowVersion?.current ?? null;
        if (hasShadowWork(set, shadowVersion) && sampled(this.safety.shadowSampleRate)) {
          const enricher = this.enricher;
          auth.shadow = {
            input,
            principal,
            set,
            enforced: auth.engine,
            shadowVersion,
            fieldsFor: (s) => enricher.fields(input, s),
          };
        }
      }
      return auth;
    } catch (err) {
      return this.failed(err, input, set, decisionId);
    }
  }

  private finish(out: PipelineResult, set: ActiveBundle | null, started: number, decisionId: string): WireCheckResponse {
    const route = routeSettings(out.input?.contextExtensions, this.routeDefaults(set));
    const enforced = enforceDecision(out.decision, route, out.input?.headers);
    // Effects after the (possibly cached) decision, from this request's principal and context.
    const shaped = applyAllowEffects(enforced.answer, set, out);
    enforced.answer = shaped.decision;
    const p = out.principal;
    const response = decisionToCheckResponse(enforced.answer, {
      principal: p ? { type: p.type, id: p.id } : undefined,
      mode: set?.settings.mode,
      outcome: enforced.outcome,
    });
    const ended = performance.now();
    const seconds = (ended - started) / 1000;
    if (this.deps.tracing) {
      const a = enforced.answer;
      this.deps.tracing.recordCheck({
        startedAt: started,
        endedAt: ended,
        headers: out.input?.headers,
        outcome: enforced.outcome,
        reason: a.reason,
        status: a.status,
        version: set?.version ?? null,
        policies: a.policies,
        cache: out.cache,
        principalType: p?.type,
        service: out.input?.service,
        mode: set?.settings.mode,
        decisionId,
        failed: enforced.failCause !== undefined,
      });
    }

    this.deps.metrics.decisions.inc({ decision: enforced.outcome, reason: enforced.answer.reason });
    this.deps.metrics.checkDuration.observe(seconds);
    if (out.rateLimit) this.deps.metrics.rateLimited.inc({ rule: out.rateLimit.rule });
    if (out.cache) this.deps.metrics.cacheLookups.inc({ result: out.cache });
    let extra = logExtra(out, enforced, route.warning, route.dryRun);
    if (shaped.report) extra = { ...extra, effects: shaped.report };

    const job = out.shadow;
    if (job === undefined) {
      this.writeLog(out, enforced, seconds, extra);
    } else if (this.safety.shadowEvaluation === 'inline') {
      this.writeLog(out, enforced, seconds, this.shadow(job, extra));
    } else if (this.pendingShadowJobs >= MAX_PENDING_SHADOW_JOBS) {
      this.deps.metrics.shadowSkipped.inc();
      this.writeLog(out, enforced, seconds, extra);
    } else {
      // After the answer is on its way: the shadow's cost never lands on this request.
      // The decision line waits for it, so it can carry the shadow outcome.
      this.pendingShadowJobs++;
      setImmediate(() => {
        this.pendingShadowJobs--;
        this.writeLog(out, enforced, seconds, this.shadow(job, extra));
      });
    }
    return response;
  }

  /** Per set, not per request: the defaults change only when a set is swapped in. */
  private routeDefaults(set: ActiveBundle | null): RouteDefaults {
    if (set !== this.defaultsFor) {
      this.defaultsFor = set;
      this.defaults = { failMode: this.safety.failMode, dryRun: this.safety.dryRun || set?.settings.enforcement === 'dry-run' };
    }
    return this.defaults;
  }

  private deadlineDeny(deadline: Deadline, version: string | null, decisionId: string) {
    return denyFor('deadline_exceeded', deadlineMessage(deadline, this.safety.decisionTimeoutMs), version, decisionId);
  }

  /** Run the shadow evaluations, count them, and add mismatches to the log fields. */
  private shadow(job: ShadowJob, extra: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
    let results: ShadowResult[];
    try {
      results = runShadowJob(job);
    } catch (err) {
      this.deps.logger.warn({ err }, 'shadow evaluation failed');
      return extra;
    }
    let mismatches: Record<string, unknown>[] | undefined;
    for (const r of results) {
      const result = r.error !== undefined ? 'error' : r.mismatch ? 'mismatch' : 'match';
      this.deps.metrics.shadowEvaluations.inc({ source: r.source, result });
      if (r.mismatch) {
        this.deps.metrics.shadowMismatches.inc({ source: r.source, version: r.version });
        (mismatches ??= []).push({ source: r.source, version: r.version, decision: r.decision, policies: r.policies });
      } else if (r.error !== undefined) {
        (mismatches ??= []).push({ source: r.source, version: r.version, error: r.error });
      }
    }
    return mismatches ? { ...extra, shadow: mismatches } : extra;
  }

  private writeLog(out: PipelineResult, enforced: Enforced, seconds: number, extra: Record<string, unknown> | undefined): void {
    const p = out.principal;
    this.deps.decisionLog.write({
      // A dry-run deny is logged as the deny it is; fail-mode answers as what was answered.
      decision: enforced.outcome === 'dry_run_allow' ? out.decision : enforced.answer,
      input: out.input,
      principal: p ? `${p.type}::"${p.id}"` : out.target?.principal,
      // Full entity uids, as the principal: `Action::"GET"`, `Service::"orders"`, the way policies name them.
      action: out.target ? `${ACTION_TYPE}::"${out.target.action}"` : undefined,
      resource: out.target ? `${RESOURCE_TYPE}::"${out.target.resource}"` : undefined,
      durationMs: seconds * 1000,
      engineErrors: out.engine?.errors,
      extra,
    });
  }
}

function sampled(rate: number): boolean {
  return rate >= 1 || (rate > 0 && Math.random() < rate);
}

function logExtra(out: PipelineResult, enforced: Enforced, warning: string | undefined, dryRun: boolean): Record<string, unknown> | undefined {
  let extra: Record<string, unknown> | undefined;
  if (enforced.outcome === 'dry_run_allow') extra = { enforcement: 'dry-run', answered: 'allow' };
  else if (enforced.failCause) {
    extra = { fail_cause: enforced.failCause, fail_mode: enforced.outcome === 'fail_open' ? 'open' : 'closed' };
    if (enforced.outcome === 'fail_open') extra.decision = 'fail_open';
  } else if (dryRun) extra = { enforcement: 'dry-run' };
  if (out.rateLimit) (extra ??= {}).rate_limit_rule = out.rateLimit.rule;
  if (out.cache === 'hit') (extra ??= {}).cached = true;
  // Both names, so the log says who claimed to be whom.
  if (out.mismatch) (extra ??= {}).host_mismatch = { host: out.mismatch.host, host_service: out.mismatch.hostService, destination: out.mismatch.identity, destination_service: out.mismatch.service };
  if (warning) (extra ??= {}).route_warning = warning;
  // With an end-user principal, the calling workload would otherwise be missing from the audit line.
  const p = out.principal;
  if (p?.type === USER_TYPE && out.input?.source.principal) (extra ??= {}).source_principal = out.input.source.principal;
  return extra;
}
