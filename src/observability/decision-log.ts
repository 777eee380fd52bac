/**
 * One log line per decision. The line is built from values the handler already
 * holds; headers are logged as the same object (pino's redaction hides the
 * sensitive ones) and only when the level asks for them.
 */
import type { Logger } from 'pino';
import type { Decision } from '../decision.js';
import type { RequestModel } from '../envoy/request-model.js';

export interface DecisionLogEntry {
  decision: Decision;
  input?: RequestModel;
  principal?: string;
  action?: string;
  resource?: string;
  durationMs: number;
  engineErrors?: { policyId: string; message: string }[];
  /** Extra fields (shadow outcome, dry-run, cache hit, ...). */
  extra?: Record<string, unknown>;
}

export class DecisionLog {
  constructor(private readonly logger: Logger, private readonly withHeaders: boolean) {}

  write(e: DecisionLogEntry): void {
    if (!this.logger.isLevelEnabled('info')) return;
    const d = e.decision;
    const line: Record<string, unknown> = {
      msg: 'decision',
      decision_id: d.decisionId,
      decision: d.kind,
      reason: d.reason,
      status: d.status,
      policies: d.policies,
      principal: e.principal,
      action: e.action,
      resource: e.resource,
      method: e.input?.method,
      path: e.input?.path,
      version: d.version,
      duration_ms: Math.round(e.durationMs * 1000) / 1000,
    };
    if (d.kind === 'deny') line.message = d.message;
    if (e.input?.requestId) line.request_id = e.input.requestId;
    if (e.engineErrors && e.engineErrors.length > 0) line.policy_errors = e.engineErrors;
    if (this.withHeaders && e.input) line.headers = e.input.headers;
    if (e.extra) Object.assign(line, e.extra);
    this.logger.info(line);
  }
}
