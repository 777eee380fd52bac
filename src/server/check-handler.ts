/**
 * The Check handler: wiring around the pipeline (src/pipeline/). It reads the
 * active set, calls decideCheck and respond, records the metrics, the trace
 * and the decision log line, and schedules shadow evaluations after the
 * answer. It never throws. It answers synchronously except when a bearer
 * token must first be verified.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { ActivePolicySet } from '../bundle/active-policy-set.js';
import type { DecisionCache } from '../cache/decision-cache.js';
import { ACTION_TYPE, RESOURCE_TYPE } from '../pipeline/cedar-request.js';
import type { ActiveBundle } from '../bundle/active-bundle.js';
import type { EngineResult } from '../cedar/evaluate.js';
import { USER_TYPE } from '../context/jwt-claims.js';
import { RequestEnricher } from '../context/request-enricher.js';
import { decisionDeadline, epochNowMs } from '../enforcement/deadline.js';
import type { Enforced } from '../enforcement/enforce.js';
import type { RouteDefaults } from '../enforcement/route-settings.js';
import { DEFAULT_SAFETY_OPTIONS, MAX_PENDING_SHADOW_JOBS, type SafetyOptions } from '../enforcement/safety-options.js';
import type { RequestRefusal } from '../envoy/check-request-limits.js';
import type { BodyLimits } from '../envoy/request-body.js';
import type { WireCheckRequest, WireCheckResponse } from '../envoy/wire-types.js';
import type { DecisionLog } from '../observability/decision-log.js';
import type { AuthzMetrics } from '../observability/metrics.js';
import type { Tracing } from '../observability/tracing.js';
import { decideCheck, failed, refusedOutcome, type CheckOutcome, type PipelineDeps } from '../pipeline/decide-check.js';
import { respond, routeDefaultsFor, routeOf } from '../pipeline/respond.js';
import { runShadowJob, shadowJobFor, type ShadowJob, type ShadowResult } from '../pipeline/shadow.js';
import { BucketStore } from '../ratelimit/bucket-store.js';
import type { FleetSize } from '../ratelimit/fleet-share.js';
import { RateLimiter } from '../ratelimit/rate-limiter.js';

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

export class CheckHandler {
  private readonly enricher: RequestEnricher;
  private readonly safety: SafetyOptions;
  private readonly limiter: RateLimiter;
  private readonly pipeline: PipelineDeps;
  private pendingShadowJobs = 0;
  private defaultsFor: ActiveBundle | null | undefined;
  private defaults: RouteDefaults = { failMode: 'closed', dryRun: false };

  constructor(private readonly deps: CheckHandlerDeps) {
    this.enricher = deps.enricher ?? RequestEnricher.NONE;
    this.safety = deps.safety ?? DEFAULT_SAFETY_OPTIONS;
    this.limiter = new RateLimiter(
      new BucketStore(this.safety.rateLimitMaxKeys, () => deps.metrics.rateLimitEvictions.inc()),
      deps.fleet,
    );
    deps.metrics.trackRateLimitKeys(() => this.limiter.buckets.size);
    this.pipeline = {
      enricher: this.enricher,
      limiter: this.limiter,
      cache: deps.cache,
      staleGuard: deps.staleGuard,
      inputOptions: deps.bodyLimits ? { bodyLimits: deps.bodyLimits } : undefined,
      decisionTimeoutMs: this.safety.decisionTimeoutMs,
    };
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
    const out = decideCheck(request, set, this.pipeline, deadline, decisionId);
    if (out instanceof Promise) {
      // decideCheck's promise does not reject; this is a last guard so a Check is always answered.
      return out.then(
        (o) => this.finish(o, set, started),
        (err: unknown) => this.finish(failed(err, undefined, set, decisionId), set, started),
      );
    }
    return this.finish(out, set, started);
  }

  /**
   * A request refused before it could be decoded (over a limit, not protobuf, or
   * larger than the transport accepts): a deny decision, logged and counted.
   */
  refuse(refusal: RequestRefusal): WireCheckResponse {
    const set = this.deps.policySet.current;
    return this.finish(refusedOutcome(refusal, set), set, performance.now());
  }

  private finish(out: CheckOutcome, set: ActiveBundle | null, started: number): WireCheckResponse {
    // A bug, not an input problem: the route's fail mode answered; say so loudly.
    if (out.internalError !== undefined)
      this.deps.logger.error({ err: out.internalError }, 'check failed unexpectedly');
    const route = routeOf(out, this.routeDefaults(set));
    const reply = respond(out, route, set);
    const { enforced } = reply;
    const ended = performance.now();
    const seconds = (ended - started) / 1000;
    const p = out.principal;
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
        decisionId: out.decision.decisionId,
        failed: enforced.failCause !== undefined,
      });
    }

    this.deps.metrics.recordCheck(enforced.outcome, enforced.answer.reason, seconds, out.cache);
    if (out.rateLimit) this.deps.metrics.rateLimited.inc({ rule: out.rateLimit.rule });
    let extra = logExtra(out, enforced, route.warning, route.dryRun);
    if (reply.effects) extra = { ...extra, effects: reply.effects };

    const job = shadowJobFor(
      out,
      set,
      this.deps.shadowVersion?.current ?? null,
      this.enricher,
      this.safety.shadowSampleRate,
    );
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
    return reply.response;
  }

  /** Per set, not per request: the defaults change only when a set is swapped in. */
  private routeDefaults(set: ActiveBundle | null): RouteDefaults {
    if (set !== this.defaultsFor) {
      this.defaultsFor = set;
      this.defaults = routeDefaultsFor(this.safety, set);
    }
    return this.defaults;
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

  private writeLog(
    out: CheckOutcome,
    enforced: Enforced,
    seconds: number,
    extra: Record<string, unknown> | undefined,
  ): void {
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

const CACHED_HIT: Readonly<Record<string, unknown>> = Object.freeze({ cached: true });

function logExtra(
  out: CheckOutcome,
  enforced: Enforced,
  warning: string | undefined,
  dryRun: boolean,
): Record<string, unknown> | undefined {
  let extra: Record<string, unknown> | undefined;
  if (enforced.outcome === 'dry_run_allow') extra = { enforcement: 'dry-run', answered: 'allow' };
  else if (enforced.failCause) {
    extra = { fail_cause: enforced.failCause, fail_mode: enforced.outcome === 'fail_open' ? 'open' : 'closed' };
    if (enforced.outcome === 'fail_open') extra.decision = 'fail_open';
  } else if (dryRun) extra = { enforcement: 'dry-run' };
  if (out.rateLimit) (extra ??= {}).rate_limit_rule = out.rateLimit.rule;
  if (out.cache === 'hit') {
    // The common line of a busy server: a plain cache hit shares one frozen object (the log only reads it).
    if (extra === undefined && !out.mismatch && !warning && out.principal?.type !== USER_TYPE) return CACHED_HIT;
    (extra ??= {}).cached = true;
  }
  // Both names, so the log says who claimed to be whom.
  if (out.mismatch)
    (extra ??= {}).host_mismatch = {
      host: out.mismatch.host,
      host_service: out.mismatch.hostService,
      destination: out.mismatch.identity,
      destination_service: out.mismatch.service,
    };
  if (warning) (extra ??= {}).route_warning = warning;
  // With an end-user principal, the calling workload would otherwise be missing from the audit line.
  const p = out.principal;
  if (p?.type === USER_TYPE && out.input?.source.principal)
    (extra ??= {}).source_principal = out.input.source.principal;
  return extra;
}
