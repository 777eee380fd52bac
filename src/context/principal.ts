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

/** Workload principals seen lately, by id: a mesh has a bounded set of callers, each asking many times. */
const workloads = new Map<string, PrincipalRef>();
/** Held at most; past it the map starts over (a flood of made-up ids costs a parse each, as without it). */
export const MAX_REMEMBERED_WORKLOADS = 4096;
const NO_PARENTS = Object.freeze([]) as unknown as PrincipalRef['parents'];

/**
 * The Workload principal of an mTLS identity, parsed once per id and shared
 * (frozen: nothing downstream may change one request's principal for the next).
 */
export function workloadPrincipal(sourcePrincipal: string): PrincipalRef {
  if (!sourcePrincipal) return ANONYMOUS;
  let p = workloads.get(sourcePrincipal);
  if (p === undefined) {
    if (workloads.size >= MAX_REMEMBERED_WORKLOADS) workloads.clear();
    p = Object.freeze({
      type: 'Workload',
      id: sourcePrincipal,
      attrs: Object.freeze(parseSpiffeId(sourcePrincipal)),
      parents: NO_PARENTS,
    }) as PrincipalRef;
    workloads.set(sourcePrincipal, p);
  }
  return p;
}
