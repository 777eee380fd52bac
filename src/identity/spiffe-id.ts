/**
 * Istio workload identities: `spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT`.
 *
 * Parsed strictly: exactly that shape, or nothing. A looser reading (pairs of
 * segments, the last `ns` winning) let `spiffe://td/ns/untrusted/sa/x/ns/shop`
 * claim namespace `shop` and slip past a namespace forbid. An id of any other
 * shape is still an identity (its whole text names the workload), it just has
 * no namespace or service account to offer.
 */

export interface SpiffeId {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

/** SPIFFE trust domain names: lower-case letters, digits, ".", "-", "_" (SPIFFE-ID spec §2.1). */
const TRUST_DOMAIN = '[a-z0-9._-]+';
/** Path segments: letters, digits, ".", "-", "_" (spec §2.2); "." and ".." are refused below. */
const SEGMENT = '[A-Za-z0-9._-]+';
const ISTIO_SPIFFE = new RegExp(`^spiffe://(${TRUST_DOMAIN})/ns/(${SEGMENT})/sa/(${SEGMENT})$`);

export const SPIFFE_SCHEME = 'spiffe://';

export function parseSpiffeId(id: string): SpiffeId | undefined {
  const m = ISTIO_SPIFFE.exec(id);
  if (!m) return undefined;
  const [, trustDomain, namespace, serviceAccount] = m;
  if (isDotSegment(namespace) || isDotSegment(serviceAccount)) return undefined;
  return { trustDomain, namespace, serviceAccount };
}

function isDotSegment(s: string): boolean {
  return s === '.' || s === '..';
}

/** The Cedar attributes of a Workload principal: all three for an Istio id, none otherwise. */
export function spiffeAttributes(id: string): Record<string, string> {
  const p = parseSpiffeId(id);
  return p ? { trustDomain: p.trustDomain, namespace: p.namespace, serviceAccount: p.serviceAccount } : {};
}
