/**
 * Envoy's HTTP ext_authz protocol, response side: a 200 allows (Envoy copies
 * the headers named in `allowed_upstream_headers` onto the upstream request,
 * and removes those listed in `x-envoy-auth-headers-to-remove`); any other
 * status denies, and Envoy sends that status, the headers and the body back to
 * the client. Made from the same CheckResponse the gRPC service answers.
 */
import type { WireCheckResponse, WireHeaderValueOption } from './wire-types.js';

export interface HttpCheckAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Envoy reads this response header as a comma-separated list of upstream headers to drop. */
export const HEADERS_TO_REMOVE_HEADER = 'x-envoy-auth-headers-to-remove';
export const DECISION_ID_HEADER = 'x-authz-decision-id';
export const POLICY_VERSION_HEADER = 'x-authz-policy-version';

function headerMap(options: WireHeaderValueOption[] | undefined, into: Record<string, string>): void {
  for (const o of options ?? []) {
    const key = o.header.key.toLowerCase();
    into[key] = key in into && o.append?.value ? `${into[key]},${o.header.value}` : o.header.value;
  }
}

export function checkResponseToHttp(res: WireCheckResponse): HttpCheckAnswer {
  const headers: Record<string, string> = {};
  const meta = res.dynamic_metadata?.fields ?? {};
  const id = meta.decision_id?.stringValue;
  const version = meta.policy_version?.stringValue;
  if (res.status.code === 0) {
    headerMap(res.ok_response?.headers, headers);
    headerMap(res.ok_response?.response_headers_to_add, headers);
    const remove = res.ok_response?.headers_to_remove ?? [];
    if (remove.length > 0) headers[HEADERS_TO_REMOVE_HEADER] = remove.join(',');
    if (id) headers[DECISION_ID_HEADER] = id;
    if (version) headers[POLICY_VERSION_HEADER] = version;
    return { status: 200, headers, body: '' };
  }
  const denied = res.denied_response;
  headerMap(denied?.headers, headers);
  if (id) headers[DECISION_ID_HEADER] = id;
  if (version) headers[POLICY_VERSION_HEADER] = version;
  // A deny must never read as 200 (Envoy would allow): an unset or OK status becomes 403.
  const status = typeof denied?.status.code === 'number' && denied.status.code >= 300 ? denied.status.code : 403;
  return { status, headers, body: denied?.body ?? '' };
}
