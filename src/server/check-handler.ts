/**
 * The Check handler: runs the pipeline against the active set, records the
 * metric and the decision log line, and shapes the CheckResponse. It never
 * throws: anything unexpected becomes a fail-closed deny.
 */
import type { Logger } from 'pino';
import { authorizeCheckRequest, type Authorization, type AuthorizeOptions } from '../authorize.js';
import type { ActivePolicySet } from '../bundle/active-policy-set.js';
import type { DecisionCache } from '../cache/decision-cache.js';
import type { EngineResult } from '../cedar/evaluate.js';
import { denyFor } from '../cedar/decide.js';
import { decisionToCheckResponse } from '../envoy/check-response.js';
import type { WireCheckRequest, WireCheckResponse } from '../envoy/wire-types.js';
import type { DecisionLog } from '../observability/decision-log.js';
import type { AuthzMetrics } from '../observability/metrics.js';

export interface CheckHandlerDeps {
  policySet: ActivePolicySet;
  metrics: AuthzMetrics;
  decisionLog: DecisionLog;
  logger: Logger;
  /** Decision cache; the composition root clears it on every swap. */
  cache?: DecisionCache<EngineResult>;
}

const CACHE_HIT = Object.freeze({ cached: true });

export class CheckHandler {
  private readonly authorizeOptions: AuthorizeOptions;

  constructor(private readonly deps: CheckHandlerDeps) {
    this.authorizeOptions = { cache: deps.cache };
  }

  handle(request: WireCheckRequest): WireCheckResponse {
    const started = performance.now();
    const set = this.deps.policySet.current;
    let auth: Authorization;
    try {
      auth = authorizeCheckRequest(request, set, undefined, this.authorizeOptions);
    } catch (err) {
      // A bug, not an input problem: fail closed and say so loudly.
      this.deps.logger.error({ err }, 'check failed unexpectedly');
      auth = { decision: denyFor('evaluation_error', 'internal error while deciding', set?.version ?? null) };
    }
    const response = decisionToCheckResponse(auth.decision);
    const seconds = (performance.now() - started) / 1000;
    const d = auth.decision;
    this.deps.metrics.decisions.inc({ decision: d.kind, reason: d.reason });
    this.deps.metrics.checkDuration.observe(seconds);
    if (auth.cache) this.deps.metrics.cacheLookups.inc({ result: auth.cache });
    this.deps.decisionLog.write({
      decision: d,
      input: auth.input,
      principal: auth.target?.principal,
      action: auth.target?.action,
      resource: auth.target?.resource,
      durationMs: seconds * 1000,
      engineErrors: auth.engine?.errors,
      extra: auth.cache === 'hit' ? CACHE_HIT : undefined,
    });
    return response;
  }
}
