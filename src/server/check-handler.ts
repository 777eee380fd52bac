/**
 * The Check handler: runs the pipeline against the active set inside the
 * safety controls, records the metric and the decision log line, and shapes
 * the CheckResponse. It never throws: anything unexpected becomes an
 * evaluation error, answered by the route's fail mode.
 *
 *   parse → (no set? deadline?) → rate limits → Cedar → (deadline?) → enforce
 *   (fail mode, dry-run) → answer; shadow evaluations after the answer.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { authorizeInput, type Authorization } from '../authorize.js';
import type { ActivePolicySet } from '../bundle/active-policy-set.js';
import type { CompiledPolicySet } from '../cedar/compile.js';
import { denyFor } from '../cedar/decide.js';
import { workloadPrincipal, type PrincipalRef } from '../cedar/principal.js';
import { decisionDeadline, deadlineMessage, epochNowMs, type Deadline } from '../enforcement/deadline.js';
import { enforceDecision, type Enforced } from '../enforcement/enforce.js';
import { routeSettings, type RouteDefaults } from '../enforcement/route-settings.js';
import { DEFAULT_SAFETY_OPTIONS, MAX_PENDING_SHADOW_JOBS, type SafetyOptions } from '../enforcement/safety-options.js';
import { checkRequestToInput } from '../envoy/check-request.js';
import { decisionToCheckResponse } from '../envoy/check-response.js';
import type { RequestModel } from '../envoy/request-model.js';
import type { WireCheckRequest, WireCheckResponse } from '../envoy/wire-types.js';
import type { DecisionLog } from '../observability/decision-log.js';
import type { AuthzMetrics } from '../observability/metrics.js';
import { BucketStore } from '../ratelimit/bucket-store.js';
import { RateLimiter, rateLimitDecision, type RateLimitHit } from '../ratelimit/rate-limiter.js';
import { hasShadowWork, runShadowJob, type ShadowJob, type ShadowResult } from '../shadow/shadow-evaluation.js';

export interface CheckHandlerDeps {
  policySet: ActivePolicySet;
  metrics: AuthzMetrics;
  decisionLog: DecisionLog;
  logger: Logger;
  safety?: SafetyOptions;
  /** The shadow version from the bundle store, evaluated beside the active set. */
  shadowVersion?: ActivePolicySet;
}

/** One check's pipeline result, before enforcement. */
interface PipelineResult extends Authorization {
  principal?: PrincipalRef;
  rateLimit?: RateLimitHit;
  shadow?: ShadowJob;
}

export class CheckHandler {
  private readonly safety: SafetyOptions;
  private readonly limiter: RateLimiter;
  private pendingShadowJobs = 0;
  private defaultsFor: CompiledPolicySet | null | undefined;
  private defaults: RouteDefaults = { failMode: 'closed', dryRun: false };

  constructor(private readonly deps: CheckHandlerDeps) {
    this.safety = deps.safety ?? DEFAULT_SAFETY_OPTIONS;
    this.limiter = new RateLimiter(new BucketStore(this.safety.rateLimitMaxKeys, () => deps.metrics.rateLimitEvictions.inc()));
    deps.metrics.trackRateLimitKeys(() => this.limiter.buckets.size);
  }

  /** Rate limit buckets held now (for /safety). */
  get rateLimitKeys(): number {
    return this.limiter.buckets.size;
  }

  /** @param grpcDeadline `call.getDeadline()`: when Envoy stops waiting for this answer. */
  handle(request: WireCheckRequest, grpcDeadline?: Date | number): WireCheckResponse {
    const started = performance.now();
    const startedMs = epochNowMs();
    const decisionId = randomUUID();
    const set = this.deps.policySet.current;
    const deadline = decisionDeadline(startedMs, this.safety.decisionTimeoutMs, grpcDeadline);
    let out: PipelineResult;
    try {
      out = this.decide(request, set, deadline, decisionId);
    } catch (err) {
      // Parsing is written never to throw (a property test holds it to that); if it does, fail by the server's mode.
      this.deps.logger.error({ err }, 'check failed unexpectedly');
      out = { decision: denyFor('evaluation_error', 'internal error while deciding', set?.version ?? null, decisionId) };
    }
    const route = routeSettings(out.input?.contextExtensions, this.routeDefaults(set));
    const enforced = enforceDecision(out.decision, route, out.input?.headers);
    const response = decisionToCheckResponse(enforced.answer);
    const seconds = (performance.now() - started) / 1000;

    this.deps.metrics.decisions.inc({ decision: enforced.outcome, reason: enforced.answer.reason });
    this.deps.metrics.checkDuration.observe(seconds);
    if (out.rateLimit) this.deps.metrics.rateLimited.inc({ rule: out.rateLimit.rule });
    const extra = logExtra(enforced, route.warning, route.dryRun, out.rateLimit);

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
  private routeDefaults(set: CompiledPolicySet | null): RouteDefaults {
    if (set !== this.defaultsFor) {
      this.defaultsFor = set;
      this.defaults = { failMode: this.safety.failMode, dryRun: this.safety.dryRun || set?.settings.enforcement === 'dry-run' };
    }
    return this.defaults;
  }

  private decide(request: WireCheckRequest, set: CompiledPolicySet | null, deadline: Deadline, decisionId: string): PipelineResult {
    const version = set?.version ?? null;
    const parsed = checkRequestToInput(request);
    if (!parsed.ok) return { decision: denyFor(parsed.reason, parsed.message, version, decisionId) };
    const input = parsed.input;
    if (!set) return { decision: denyFor('no_policy_set', 'no policy set is active yet', null, decisionId), input };
    try {
      return this.evaluate(input, set, deadline, decisionId);
    } catch (err) {
      // A bug, not an input problem: keep the input so the route's fail mode still applies.
      this.deps.logger.error({ err }, 'check failed unexpectedly');
      return { decision: denyFor('evaluation_error', 'internal error while deciding', version, decisionId), input };
    }
  }

  private evaluate(input: RequestModel, set: CompiledPolicySet, deadline: Deadline, decisionId: string): PipelineResult {
    const now = epochNowMs();
    if (now >= deadline.atMs) return { decision: this.deadlineDeny(deadline, set.version, decisionId), input };

    const principal = principalFor(input);
    const hit = this.limiter.check(set.settings, input, principal, now);
    if (hit) return { decision: rateLimitDecision(hit, set.version, decisionId), input, principal, rateLimit: hit };

    const auth: PipelineResult = authorizeInput(input, set, decisionId);
    auth.principal = principal;
    // Evaluation cannot be interrupted; if it ran past the deadline, its answer is too late to use.
    if (epochNowMs() >= deadline.atMs) return { ...auth, decision: this.deadlineDeny(deadline, set.version, decisionId) };
    if (auth.engine && auth.cedarRequest) {
      const shadowVersion = this.deps.shadowVersion?.current ?? null;
      if (hasShadowWork(set, shadowVersion) && sampled(this.safety.shadowSampleRate)) {
        auth.shadow = { input, principal, set, cedarRequest: auth.cedarRequest, enforced: auth.engine, shadowVersion };
      }
    }
    return auth;
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
    const c = out.cedarRequest;
    const p = c?.principal ?? out.principal;
    this.deps.decisionLog.write({
      // A dry-run deny is logged as the deny it is; fail-mode answers as what was answered.
      decision: enforced.outcome === 'dry_run_allow' ? out.decision : enforced.answer,
      input: out.input,
      principal: p ? `${p.type}::"${p.id}"` : undefined,
      action: c?.action.id,
      resource: c?.resource.id,
      durationMs: seconds * 1000,
      engineErrors: out.engine?.errors,
      extra,
    });
  }
}

/**
 * Who the rate limiter sees; the same principal Cedar is asked about.
 * (Identity from credentials, when added, must be resolved here too.)
 */
function principalFor(input: RequestModel): PrincipalRef {
  return workloadPrincipal(input.source.principal);
}

function sampled(rate: number): boolean {
  return rate >= 1 || (rate > 0 && Math.random() < rate);
}

function logExtra(enforced: Enforced, warning: string | undefined, dryRun: boolean, hit: RateLimitHit | undefined): Record<string, unknown> | undefined {
  let extra: Record<string, unknown> | undefined;
  if (enforced.outcome === 'dry_run_allow') extra = { enforcement: 'dry-run', answered: 'allow' };
  else if (enforced.failCause) {
    extra = { fail_cause: enforced.failCause, fail_mode: enforced.outcome === 'fail_open' ? 'open' : 'closed' };
    if (enforced.outcome === 'fail_open') extra.decision = 'fail_open';
  } else if (dryRun) extra = { enforcement: 'dry-run' };
  if (hit) (extra ??= {}).rate_limit_rule = hit.rule;
  if (warning) (extra ??= {}).route_warning = warning;
  return extra;
}
