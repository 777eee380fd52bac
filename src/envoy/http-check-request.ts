/**
 * Envoy's HTTP ext_authz protocol, request side: Envoy (or Istio's
 * `envoyExtAuthzHttp` provider) sends the authorization server a request with
 * the original method, `path_prefix` + the original path, the original Host,
 * and the headers it was told to include. This turns that request into the
 * CheckRequest the gRPC service would have received, so both go through the
 * one pipeline.
 *
 * Identity: an HTTP check carries no peer attributes. The caller's mTLS
 * identity arrives only in a header Envoy itself sets from the client
 * certificate (`x-forwarded-client-cert` with `forward_client_cert_details:
 * SANITIZE_SET`, Istio's sidecar default), so that header, and only that one,
 * names the source principal.
 */
import type { WireCheckRequest } from './wire-types.js';

/** The incoming HTTP check, as node:http gives it. */
export interface HttpCheck {
  method: string;
  /** Path and query as received (path_prefix included). */
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface HttpCheckSettings {
  /** Envoy's `path_prefix` / Istio's `pathPrefix`: removed from the path before deciding. */
  pathPrefix: string;
  /** Header carrying the caller's client certificate details (XFCC format); "" to take no identity from headers. */
  identityHeader: string;
}

export const DEFAULT_HTTP_IDENTITY_HEADER = 'x-forwarded-client-cert';

/**
 * The URI= of the last element of an x-forwarded-client-cert value: the
 * certificate the nearest proxy (the one asking us) saw. Earlier elements were
 * appended by proxies further away. Values may be double-quoted (RFC: quotes
 * when they hold `,` `;` or `=`). Undefined when there is no URI.
 */
export function xfccPrincipal(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const elements = splitOutsideQuotes(value, ',');
  const last = elements[elements.length - 1];
  for (const pair of splitOutsideQuotes(last, ';')) {
    const eq = pair.indexOf('=');
    if (eq === -1) continue;
    if (pair.slice(0, eq).trim().toLowerCase() !== 'uri') continue;
    let v = pair.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    return v || undefined;
  }
  return undefined;
}

function splitOutsideQuotes(s: string, sep: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (c === sep && !quoted) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out;
}

/** The request path with `pathPrefix` removed ("/authz/orders/1" → "/orders/1"); unchanged when it does not start with it. */
export function stripPathPrefix(url: string, pathPrefix: string): string {
  if (!pathPrefix || pathPrefix === '/') return url;
  const prefix = pathPrefix.endsWith('/') ? pathPrefix.slice(0, -1) : pathPrefix;
  if (url === prefix) return '/';
  if (url.startsWith(prefix) && (url[prefix.length] === '/' || url[prefix.length] === '?')) {
    const rest = url.slice(prefix.length);
    return rest.startsWith('?') ? `/${rest}` : rest;
  }
  return url;
}

export function httpCheckToCheckRequest(
  check: HttpCheck,
  settings: HttpCheckSettings,
  nowMs: number,
): WireCheckRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(check.headers)) {
    if (value === undefined) continue;
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  const path = stripPathPrefix(check.url, settings.pathPrefix);
  const host = headers.host ?? '';
  headers[':authority'] = host;
  headers[':method'] = check.method;
  headers[':path'] = path;
  delete headers.host;
  const principal = settings.identityHeader ? xfccPrincipal(headers[settings.identityHeader]) : undefined;
  return {
    attributes: {
      source: principal ? { principal } : {},
      destination: {},
      context_extensions: {},
      request: {
        time: { seconds: String(Math.floor(nowMs / 1000)), nanos: (nowMs % 1000) * 1e6 },
        http: {
          id: headers['x-request-id'] ?? '',
          method: check.method.toUpperCase(),
          path,
          host,
          scheme: headers['x-forwarded-proto'] ?? 'http',
          protocol: 'HTTP/1.1',
          headers,
        },
      },
    },
  };
}
