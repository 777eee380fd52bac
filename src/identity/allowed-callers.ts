/**
 * Who may call Check (`--allowed-callers`): with mTLS on the listener, the
 * caller's identity is the SPIFFE id in its client certificate, and only ids
 * on the list get decisions; anyone else gets gRPC UNAUTHENTICATED.
 *
 * Without this list, any workload holding a certificate from the client CA
 * could ask for decisions, claim any source address and drain another
 * client's rate-limit bucket (issue 12). Identities are parsed strictly
 * (SPIFFE spec: https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md,
 * X.509-SVID: exactly one URI SAN); anything else is no identity at all.
 *
 * Patterns are exact SPIFFE ids, or a prefix ending in `*`:
 *   spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account
 *   spiffe://cluster.local/ns/shop/*      every service account in namespace shop
 * A prefix must name a whole trust domain (`spiffe://td/…*`), so
 * `spiffe://cluster.local*` cannot also match `spiffe://cluster.localhost/…`.
 */
import type { PeerCertificate } from 'node:tls';

/** SPIFFE-ID.md: trust domain of lowercase letters, digits, ".", "-", "_"; path segments of letters, digits, ".", "-", "_". */
const TRUST_DOMAIN = '[a-z0-9._-]+';
const SEGMENT = '[A-Za-z0-9._-]+';
const SPIFFE_ID = new RegExp(`^spiffe://${TRUST_DOMAIN}(/${SEGMENT})*$`);
const PREFIX_PATTERN = new RegExp(`^spiffe://${TRUST_DOMAIN}/(${SEGMENT}/)*[A-Za-z0-9._-]*\\*$`);
/** SPIFFE-ID.md: "URIs with a total length longer than 2048 bytes SHOULD NOT be used". */
export const MAX_SPIFFE_ID_LENGTH = 2048;

/** Whether `id` is a SPIFFE id by the spec (no empty, "." or ".." segments, no query, fragment, port or user info). */
export function isSpiffeId(id: string): boolean {
  if (id.length > MAX_SPIFFE_ID_LENGTH || !SPIFFE_ID.test(id)) return false;
  return !id
    .slice('spiffe://'.length)
    .split('/')
    .some((s) => s === '.' || s === '..');
}

/** Why `pattern` cannot be an allowed-callers entry, or undefined when it can. */
export function callerPatternProblem(pattern: string): string | undefined {
  if (pattern.endsWith('*')) {
    if (pattern.indexOf('*') !== pattern.length - 1 || !PREFIX_PATTERN.test(pattern)) {
      return `"${pattern}": a prefix must be a SPIFFE id up to a single trailing "*" after the trust domain, e.g. spiffe://cluster.local/ns/shop/*`;
    }
    return undefined;
  }
  if (!isSpiffeId(pattern))
    return `"${pattern}" is not a SPIFFE id (spiffe://TRUST_DOMAIN/PATH), nor a prefix ending in "*"`;
  return undefined;
}

export class CallerAllowList {
  private readonly exact: Set<string>;
  private readonly prefixes: string[];

  constructor(readonly patterns: readonly string[]) {
    this.exact = new Set(patterns.filter((p) => !p.endsWith('*')));
    this.prefixes = patterns.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  }

  allows(id: string): boolean {
    return this.exact.has(id) || this.prefixes.some((p) => id.startsWith(p));
  }
}

/**
 * Node's `subjectaltname` string ("DNS:a, URI:spiffe://…, IP Address:…") as
 * [type, value] pairs. Node quotes values holding "," or other specials as
 * JSON strings (CVE-2021-44532), so a value cannot smuggle a second entry.
 */
export function subjectAltNames(san: string | undefined): [string, string][] {
  const out: [string, string][] = [];
  if (!san) return out;
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(':', i);
    if (colon === -1) break;
    const type = san.slice(i, colon).trim();
    let value: string;
    let next: number;
    if (san[colon + 1] === '"') {
      // A JSON string: find its closing quote, skipping escapes.
      let j = colon + 2;
      while (j < san.length && san[j] !== '"') j += san[j] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(san.slice(colon + 1, j + 1)) as string;
      } catch {
        value = '';
      }
      next = san.indexOf(', ', j);
    } else {
      next = san.indexOf(', ', colon);
      value = san.slice(colon + 1, next === -1 ? san.length : next);
    }
    out.push([type, value]);
    if (next === -1) break;
    i = next + 2;
  }
  return out;
}

/** The SPIFFE id of a client certificate: its only URI SAN, when that is a SPIFFE id; otherwise undefined. */
export function spiffeIdOfCertificate(cert: Pick<PeerCertificate, 'subjectaltname'> | undefined): string | undefined {
  const uris = subjectAltNames(cert?.subjectaltname).filter(([type]) => type === 'URI');
  if (uris.length !== 1) return undefined;
  const id = uris[0]![1];
  return isSpiffeId(id) ? id : undefined;
}

export type CallerVerdict = { ok: true; id: string } | { ok: false; id: string | undefined; message: string };

/** The verdict for a caller presenting `cert` (undefined: no verified client certificate). */
export function checkCaller(
  list: CallerAllowList,
  cert: Pick<PeerCertificate, 'subjectaltname'> | undefined,
): CallerVerdict {
  if (!cert) return { ok: false, id: undefined, message: 'no verified client certificate' };
  const id = spiffeIdOfCertificate(cert);
  if (!id)
    return { ok: false, id: undefined, message: 'the client certificate carries no SPIFFE id (exactly one URI SAN)' };
  if (!list.allows(id)) return { ok: false, id, message: `caller ${id} is not in --allowed-callers` };
  return { ok: true, id };
}

/** Certificates whose verdict the gate keeps (past it, it starts over): a fleet's Envoys, with room for rotation. */
export const MAX_REMEMBERED_CERTIFICATES = 1024;

/** Distinct refused identities logged at warn (then debug), so a misbehaving client cannot flood the log. */
export const MAX_LOGGED_REFUSED_CALLERS = 100;

export interface CallerGateHooks {
  /** Counted and logged by the composition root. */
  onRefused(verdict: Extract<CallerVerdict, { ok: false }>, firstTime: boolean): void;
}

/** The GrpcServer hook: undefined to let the call through, else the UNAUTHENTICATED message. */
export function callerGate(
  list: CallerAllowList,
  hooks: CallerGateHooks,
): (auth: { sslPeerCertificate?: PeerCertificate } | null) => string | undefined {
  const logged = new Set<string>();
  // Verdicts by certificate (SHA-256 of its DER, which Node computes with the certificate object): a client
  // presents the same certificate on every call, and the same bytes always get the same verdict from this list.
  const verdicts = new Map<string, CallerVerdict>();
  return (auth) => {
    const cert = auth?.sslPeerCertificate;
    const fingerprint = cert?.fingerprint256;
    let verdict = fingerprint ? verdicts.get(fingerprint) : undefined;
    if (verdict === undefined) {
      verdict = checkCaller(list, cert);
      if (fingerprint) {
        if (verdicts.size >= MAX_REMEMBERED_CERTIFICATES) verdicts.clear();
        verdicts.set(fingerprint, verdict);
      }
    }
    if (verdict.ok) return undefined;
    const key = verdict.id ?? '(no identity)';
    const firstTime = !logged.has(key) && logged.size < MAX_LOGGED_REFUSED_CALLERS;
    if (firstTime) logged.add(key);
    hooks.onRefused(verdict, firstTime);
    return 'this caller may not ask for authorization decisions';
  };
}
