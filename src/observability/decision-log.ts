/**
 * One log line per decision. The line is built from values the handler already
 * holds; headers are logged as the same object (pino's redaction hides the
 * sensitive ones) and only when the level asks for them.
 */
import type { Logger } from 'pino';
import type { Decision } from '../decision.js';
import type { RequestModel } from '../envoy/request-model.js';
import { forwardedClientAddress, XFF_HEADER } from '../context/client-address.js';

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
  /**
   * `trustedHops`: proxies whose x-forwarded-for entries are believed (config
   * trustedHops); with one or more, the line also carries the client address
   * they vouch for, the one IP lists match, so a 429 or a blocklist deny can be
   * traced to the client behind the proxies.
   */
  constructor(
    private readonly logger: Logger,
    private readonly withHeaders: boolean,
    private readonly trustedHops = 0,
  ) {}

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
      source_address: sourceAddress(e.input),
      method: e.input?.method,
      path: e.input?.path,
      version: d.version,
      duration_ms: Math.round(e.durationMs * 1000) / 1000,
    };
    if (d.kind === 'deny') line.message = d.message;
    if (e.input?.requestId) line.request_id = e.input.requestId;
    if (this.trustedHops > 0 && e.input) {
      const client = forwardedClientAddress(e.input.headers[XFF_HEADER], this.trustedHops);
      if (client) line.client_address = client;
    }
    if (e.engineErrors && e.engineErrors.length > 0) line.policy_errors = e.engineErrors;
    if (this.withHeaders && e.input) line.headers = e.input.headers;
    if (e.extra) Object.assign(line, e.extra);
    this.logger.info(line);
  }
}

/** The peer's socket address as Envoy saw it ("ip:port"; IPv6 in brackets); undefined without one. */
function sourceAddress(input: RequestModel | undefined): string | undefined {
  const ip = input?.source.ip;
  if (!ip) return undefined;
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return input.source.port ? `${host}:${input.source.port}` : host;
}
