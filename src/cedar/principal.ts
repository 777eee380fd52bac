/**
 * Who is asking: the workload identity from mTLS (Istio SPIFFE ids), or anonymous.
 */
import type { CedarValueJson } from './cedar-wasm.js';

export interface PrincipalRef {
  type: string;
  id: string;
  attrs: Record<string, CedarValueJson>;
  /** Parents contributed by the request itself (e.g. JWT groups); merged with static ones. */
  parents: { type: string; id: string }[];
}

export const ANONYMOUS: PrincipalRef = Object.freeze({ type: 'Anonymous', id: 'anonymous', attrs: {}, parents: [] }) as PrincipalRef;

const SPIFFE = /^spiffe:\/\/([^/]+)\/(.*)$/;

/** spiffe://TRUST_DOMAIN/ns/NS/sa/SA → { trustDomain, namespace, serviceAccount } (parts that exist). */
export function parseSpiffeId(id: string): Record<string, string> {
  const m = SPIFFE.exec(id);
  if (!m) return {};
  const out: Record<string, string> = { trustDomain: m[1] };
  const segs = m[2].split('/');
  for (let i = 0; i + 1 < segs.length; i += 2) {
    if (segs[i] === 'ns') out.namespace = segs[i + 1];
    else if (segs[i] === 'sa') out.serviceAccount = segs[i + 1];
  }
  return out;
}

export function workloadPrincipal(sourcePrincipal: string): PrincipalRef {
  if (!sourcePrincipal) return ANONYMOUS;
  return { type: 'Workload', id: sourcePrincipal, attrs: parseSpiffeId(sourcePrincipal), parents: [] };
}
