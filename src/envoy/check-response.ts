/**
 * Decision → CheckResponse. Pure; the only place that knows Envoy's answer shape.
 */
import type { Decision } from '../decision.js';
import type { WireCheckResponse, WireHeaderValueOption, WireStruct } from './wire-types.js';

/** google.rpc.Code values Envoy reads from CheckResponse.status. */
export const GRPC_OK = 0;
export const GRPC_PERMISSION_DENIED = 7;

/**
 * `append: false` is what Envoy before 1.23 reads; `append_action` is what newer
 * Envoy reads (and it rejects a message that sets both to conflicting values,
 * so both say "overwrite").
 */
export function overwriteHeader(key: string, value: string): WireHeaderValueOption {
  return { header: { key, value }, append: { value: false }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' };
}

function headerOptions(headers: Record<string, string>): WireHeaderValueOption[] {
  const out: WireHeaderValueOption[] = [];
  for (const key in headers) out.push(overwriteHeader(key, headers[key]));
  return out;
}

function stringStruct(fields: Record<string, string>): WireStruct {
  const out: WireStruct = { fields: {} };
  for (const k in fields) out.fields![k] = { stringValue: fields[k] };
  return out;
}

export function denyBody(decision: Decision): string {
  return JSON.stringify({
    decision: 'deny',
    message: decision.message,
    policies: decision.policies,
    decision_id: decision.decisionId,
  });
}

/**
 * Who and what decided, for filters after ext_authz. Envoy stores the
 * CheckResponse's dynamic_metadata under the ext_authz filter's namespace
 * (`envoy.filters.http.ext_authz`), where the rate-limit filter, access logs
 * and Lua filters read it (docs/safety.md, "Dynamic metadata").
 */
export interface DecisionMetadata {
  principal?: { type: string; id: string };
  /** bundle.yaml mode: normal or high-alert. */
  mode?: string;
  /** What Envoy was told, as the `decision` label of authz_decisions_total (allow, deny, dry_run_allow, fail_open). */
  outcome?: string;
}

export function decisionMetadata(decision: Decision, meta: DecisionMetadata = {}): WireStruct {
  const fields: Record<string, string> = {
    decision_id: decision.decisionId,
    policy_version: decision.version ?? '',
    decision: meta.outcome ?? decision.kind,
    reason: decision.reason,
    // One string, not a list: rate-limit descriptors and access-log commands read strings.
    policies: decision.policies.join(','),
  };
  if (meta.principal) {
    fields.principal_type = meta.principal.type;
    fields.principal_id = meta.principal.id;
  }
  if (meta.mode) fields.mode = meta.mode;
  return stringStruct(fields);
}

export function decisionToCheckResponse(decision: Decision, meta?: DecisionMetadata): WireCheckResponse {
  const metadata = decisionMetadata(decision, meta);
  if (decision.kind === 'allow') {
    const ok: NonNullable<WireCheckResponse['ok_response']> = { headers: headerOptions(decision.headers) };
    if (decision.responseHeaders) ok.response_headers_to_add = headerOptions(decision.responseHeaders);
    if (decision.headersToRemove && decision.headersToRemove.length > 0)
      ok.headers_to_remove = decision.headersToRemove;
    if (decision.queryParametersToRemove && decision.queryParametersToRemove.length > 0)
      ok.query_parameters_to_remove = decision.queryParametersToRemove;
    return { status: { code: GRPC_OK }, ok_response: ok, dynamic_metadata: metadata };
  }
  return {
    status: { code: GRPC_PERMISSION_DENIED, message: decision.message },
    denied_response: {
      status: { code: decision.status },
      headers: [overwriteHeader('content-type', 'application/json'), ...headerOptions(decision.headers)],
      body: denyBody(decision),
    },
    dynamic_metadata: metadata,
  };
}
