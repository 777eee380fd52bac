/**
 * The Check handler: runs the pipeline against the active set, records the
 * metric and the decision log line, and shapes the CheckResponse. It never
 * throws: anything unexpected becomes a fail-closed deny. It answers
 * synchronously except when a bearer token must first be verified.
 */
import type { Logger } from 'pino';
import { authorizeRequest, type Authorization } from '../authorize.js';
import type { ActivePolicySet } from '../bundle/active-policy-set.js';
import type { CompiledPolicySet } from '../cedar/compile.js';
import { denyFor } from '../cedar/decide.js';
import { USER_TYPE } from '../context/jwt-claims.js';
import { RequestEnricher } from '../context/request-enricher.js';
import { decisionToCheckResponse } from '../envoy/check-response.js';
import type { WireCheckRequest, WireCheckResponse } from '../envoy/wire-types.js';
import type { DecisionLog } from '../observability/decision-log.js';
import type { AuthzMetrics } from '../observability/metrics.js';

export interface CheckHandlerDeps {
  policySet: ActivePolicySet;
  metrics: AuthzMetrics;
  decisionLog: DecisionLog;
  logger: Logger;
  /** End-user identity and context fields; without it, the workload principal and plain context. */
  enricher?: RequestEnricher;
}

export class CheckHandler {
  private readonly enricher: RequestEnricher;

  constructor(private readonly deps: CheckHandlerDeps) {
    this.enricher = deps.enricher ?? RequestEnricher.NONE;
  }

  handle(request: WireCheckRequest): WireCheckResponse | Promise<WireCheckResponse> {
    const started = performance.now();
    const set = this.deps.policySet.current;
    let auth: Authorization | Promise<Authorization>;
    try {
      auth = authorizeRequest(request, set, this.enricher);
    } catch (err) {
      auth = this.failed(err, set);
    }
    if (auth instanceof Promise) {
      return auth.then(
        (a) => this.finish(a, started),
        (err: unknown) => this.finish(this.failed(err, set), started),
      );
    }
    return this.finish(auth, started);
  }

  private failed(err: unknown, set: CompiledPolicySet | null): Authorization {
    // A bug, not an input problem: fail closed and say so loudly.
    this.deps.logger.error({ err }, 'check failed unexpectedly');
    return { decision: denyFor('evaluation_error', 'internal error while deciding', set?.version ?? null) };
  }

  private finish(auth: Authorization, started: number): WireCheckResponse {
    const response = decisionToCheckResponse(auth.decision);
    const seconds = (performance.now() - started) / 1000;
    const d = auth.decision;
    this.deps.metrics.decisions.inc({ decision: d.kind, reason: d.reason });
    this.deps.metrics.checkDuration.observe(seconds);
    this.deps.decisionLog.write({
      decision: d,
      input: auth.input,
      principal: auth.cedarRequest ? `${auth.cedarRequest.principal.type}::"${auth.cedarRequest.principal.id}"` : undefined,
      action: auth.cedarRequest?.action.id,
      resource: auth.cedarRequest?.resource.id,
      durationMs: seconds * 1000,
      engineErrors: auth.engine?.errors,
      // With an end-user principal, the calling workload would otherwise be missing from the audit line.
      ...(auth.cedarRequest?.principal.type === USER_TYPE && auth.input?.source.principal ? { extra: { source_principal: auth.input.source.principal } } : {}),
    });
    return response;
  }
}
