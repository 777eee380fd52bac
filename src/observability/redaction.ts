/**
 * What must never reach a log line or an admin page: credentials in request
 * headers, secret-named query parameters, user info in URLs, and strings long
 * enough to turn one request into megabytes of log.
 *
 * The header list follows the configuration: the built-in credential headers,
 * every header the server is configured to trust (the upstream JWT payload
 * header carries a verified token's claims; the risk header is a signal an
 * attacker would like to read back), and whatever `decisionLogRedactHeaders`
 * adds.
 */

import { CREDENTIAL_HEADERS } from '../envoy/credential-headers.js';

/** Credential-bearing headers, redacted in every decision line. */
export const DEFAULT_REDACTED_HEADERS = CREDENTIAL_HEADERS;

export const REDACTED = '[redacted]';
/** Headers logged per decision line at most; the rest are counted, not shown (a request may carry 1,000). */
export const MAX_LOGGED_HEADERS = 64;

/**
 * Query parameter names that carry secrets: OAuth (`access_token`, `code`,
 * `client_secret`), API keys, passwords, signed-URL signatures
 * (`X-Amz-Signature`, `X-Amz-Credential`, `sig`), sessions.
 */
const SECRET_PARAM = /token|secret|passw|pwd|api[-_]?key|signature|credential|session|auth|jwt|^key$|^sig$|^code$/i;

export function isSecretParamName(name: string): boolean {
  return SECRET_PARAM.test(name);
}

/** The settings that decide which headers are redacted. */
export interface RedactionSettings {
  decisionLogRedactHeaders?: readonly string[];
  jwtUpstreamHeader?: string;
  riskHeader?: string;
}

/** Lower-case header names to redact under `settings`. */
export function redactedHeaderNames(settings: RedactionSettings): Set<string> {
  const names = new Set<string>(DEFAULT_REDACTED_HEADERS);
  for (const h of settings.decisionLogRedactHeaders ?? []) names.add(h.toLowerCase());
  if (settings.jwtUpstreamHeader) names.add(settings.jwtUpstreamHeader.toLowerCase());
  if (settings.riskHeader) names.add(settings.riskHeader.toLowerCase());
  return names;
}

/** `s` cut to `max` characters, marked so a reader knows it was cut and by how much. */
export function cutString(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}…[cut ${s.length - max} chars]`;
}

/** `s` with the value of every secret-named query parameter replaced (a path, a URL, a Referer). */
export function redactQuery(s: string): string {
  const q = s.indexOf('?');
  if (q === -1) return s;
  const hash = s.indexOf('#', q);
  const query = s.slice(q + 1, hash === -1 ? s.length : hash);
  let changed = false;
  const parts = query.split('&').map((part) => {
    const eq = part.indexOf('=');
    const rawName = eq === -1 ? part : part.slice(0, eq);
    let name = rawName;
    try {
      name = decodeURIComponent(rawName.replace(/\+/g, ' '));
    } catch {
      // Undecodable: judge the name as written.
    }
    if (eq === -1 || !isSecretParamName(name)) return part;
    changed = true;
    return `${rawName}=${REDACTED}`;
  });
  if (!changed) return s;
  return `${s.slice(0, q + 1)}${parts.join('&')}${hash === -1 ? '' : s.slice(hash)}`;
}

/** Any `scheme://user:password@` in free text (an error message) with the user info replaced. */
export function redactUserInfo(text: string): string {
  return text.replace(/([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/\s@]+@/g, `$1${REDACTED}@`);
}

/**
 * A URL for display: user info (`user:password@`) removed and secret-named
 * query parameters redacted. Anything that is not a URL is returned redacted
 * as a query would be.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return redactQuery(url.replace(/\/\/[^/@]*@/, `//${REDACTED}@`));
  }
  if (parsed.username || parsed.password) {
    parsed.username = '';
    parsed.password = '';
  }
  return redactQuery(parsed.toString());
}

/**
 * Request headers as a decision line shows them: credentials redacted,
 * URLs in values stripped of secret parameters, names and values cut, at
 * most MAX_LOGGED_HEADERS entries (`…` counts the rest).
 */
export function headersForLog(
  headers: Record<string, string>,
  redact: ReadonlySet<string>,
  maxString: number,
): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  let shown = 0;
  let total = 0;
  for (const name in headers) {
    total++;
    if (shown >= MAX_LOGGED_HEADERS) continue;
    shown++;
    const value = headers[name]!;
    out[cutString(name, maxString)] = redact.has(name)
      ? REDACTED
      : cutString(value.includes('?') ? redactQuery(value) : value, maxString);
  }
  if (total > shown) out['…'] = total - shown;
  return out;
}
