/**
 * Who is asking: the workload identity from mTLS (Istio SPIFFE ids), or anonymous.
 */
import type { CedarValueJson } from '../cedar/cedar-wasm.js';
import { spiffeAttributes } from '../identity/spiffe-id.js';

export interface PrincipalRef {
  type: string;
  id: string;
  attrs: Record<string, CedarValueJson>;
  /** Parents contributed by the request itself (e.g. JWT groups); merged with static ones. */
  parents: { type: string; id: string }[];
}

export const ANONYMOUS: PrincipalRef = Object.freeze({
  type: 'Anonymous',
  id: 'anonymous',
  attrs: {},
  parents: [],
}) as PrincipalRef;

/** spiffe://TRUST_DOMAIN/ns/NS/sa/SA → { trustDomain, namespace, serviceAccount }; {} for any other shape (identity/spiffe-id.ts). */
export const parseSpiffeId = spiffeAttributes;

export function workloadPrincipal(sourcePrincipal: string): PrincipalRef {
  if (!sourcePrincipal) return ANONYMOUS;
  return { type: 'Workload', id: sourcePrincipal, attrs: parseSpiffeId(sourcePrincipal), parents: [] };
}
