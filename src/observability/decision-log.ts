/**
 * One log line per decision. The line is built from values the handler already
 * holds; headers only when configured. Nothing a caller sends reaches the line
 * unbounded or in clear: credential headers (the list follows the config, see
 * redaction.ts) are redacted, secret-named query parameters in the path and
 * in URL-valued headers are redacted, and every string is cut at
 * `maxString` characters.
 */
import type { Logger } from 'pino';
import type { Decision } from '../decision.js';
import type { RequestModel } from '../envoy/request-model.js';
import { infoLineWriter } from './logger.js';
import { cutString, DEFAULT_REDACTED_HEADERS, headersForLog, redactQuery } from './redaction.js';

export const DEFAULT_LOG_MAX_STRING = 1024;
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

export interface DecisionLogOptions {
  /** Log request headers (redacted). */
  withHeaders: boolean;
  /** Lower-case header names whose values are never logged. */
  redactHeaders?: ReadonlySet<string>;
  /** Longest string logged per field. */
  maxString?: number;
  /**
   * Proxies whose x-forwarded-for entries are believed (config trustedHops); with
   * one or more, the line also carries the client address they vouch for, the one
   * IP lists match, so a 429 or a blocklist deny can be traced to the client.
   */
  trustedHops?: number;
}

export class DecisionLog {
  private readonly withHeaders: boolean;
  private readonly redact: ReadonlySet<string>;
  private readonly max: number;
  private readonly trustedHops: number;
  private readonly writeLine: (fields: Record<string, unknown>) => void;

  constructor(
    private readonly logger: Logger,
    options: DecisionLogOptions | boolean,
  ) {
    const o = typeof options === 'boolean' ? { withHeaders: options } : options;
    this.withHeaders = o.withHeaders;
    this.redact = o.redactHeaders ?? new Set(DEFAULT_REDACTED_HEADERS);
    this.max = o.maxString ?? DEFAULT_LOG_MAX_STRING;
    this.trustedHops = typeof options === 'boolean' ? 0 : (options.trustedHops ?? 0);
    this.writeLine = infoLineWriter(logger);
  }

  write(e: DecisionLogEntry): void {
    if (!this.logger.isLevelEnabled('info')) return;
    const d = e.decision;
    const max = this.max;
    const cut = (s: string | undefined) => (s === undefined ? undefined : cutString(s, max));
    const path = e.input?.path;
    const line: Record<string, unknown> = {
      msg: 'decision',
      decision_id: d.decisionId,
      decision: d.kind,
      reason: d.reason,
      status: d.status,
      policies: d.policies,
      principal: cut(e.principal),
      action: cut(e.action),
      resource: cut(e.resource),
      source_address: sourceAddress(e.input),
      method: cut(e.input?.method),
      // The model's path has no query; a path that still holds one (a `?` Envoy sent encoded) is redacted like a query.
      path: path === undefined ? undefined : cutString(path.includes('?') ? redactQuery(path) : path, max),
      version: d.version,
      duration_ms: Math.round(e.durationMs * 1000) / 1000,
    };
    if (d.kind === 'deny') line.message = cut(d.message);
    if (e.input?.requestId) line.request_id = cut(e.input.requestId);
    if (this.trustedHops > 0 && e.input) {
      const client = forwardedClientAddress(e.input.headers[XFF_HEADER], this.trustedHops);
      if (client) line.client_address = client;
    }
    if (e.engineErrors && e.engineErrors.length > 0)
      line.policy_errors = e.engineErrors.map((x) => ({ policyId: x.policyId, message: cutString(x.message, max) }));
    if (this.withHeaders && e.input) line.headers = headersForLog(e.input.headers, this.redact, max);
    const extra = e.extra;
    if (extra)
      for (const k in extra) {
        const v = extra[k];
        line[k] = typeof v === 'string' ? cutString(v, max) : v;
      }
    this.writeLine(line);
  }
}

/** The peer's socket address as Envoy saw it ("ip:port"; IPv6 in brackets); undefined without one. */
function sourceAddress(input: RequestModel | undefined): string | undefined {
  const ip = input?.source.ip;
  if (!ip) return undefined;
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return input.source.port ? `${host}:${input.source.port}` : host;
}
