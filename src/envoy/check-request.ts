/**
 * CheckRequest → RequestModel. Pure and synchronous; never throws on any
 * decoded message (a property test holds it to that). Anything too incomplete
 * to decide on comes back as `{ ok: false }` and becomes a 400 deny.
 */
import { isIP } from 'node:net';
import { normalizePath } from './path-normalization.js';
import type { InputResult, PeerModel, RequestModel } from './request-model.js';
import { NO_BODY, requestBody, type BodyLimits } from './request-body.js';
import { canonicalHost } from './service-names.js';
import { ServiceDirectory, type TargetResult } from './target-service.js';
import type {
  WireCheckRequest,
  WireHeaderValue,
  WireHttpRequest,
  WirePeer,
  WireStruct,
  WireStructValue,
} from './wire-types.js';

/** Envoy's own default is 100 headers; meshes raise it. Past this we refuse rather than spend. */
export const MAX_HEADERS = 1000;
/** Total header bytes we accept (Envoy's max_request_headers_kb tops out at 8192 KiB; 256 KiB is generous). */
export const MAX_HEADER_BYTES = 256 * 1024;

export interface InputOptions {
  /** Clock for requests without request.time. */
  nowMs: () => number;
  /** How the active bundle names services (bundle.yaml `services:`, gateways, frontProxy); the defaults otherwise. */
  targets?: ServiceDirectory;
  /** What a forwarded body may cost before policies stop seeing it (DEFAULT_BODY_LIMITS otherwise). */
  bodyLimits?: BodyLimits;
}

const DEFAULT_OPTIONS: InputOptions = { nowMs: Date.now };

export function checkRequestToInput(
  req: WireCheckRequest | null | undefined,
  options: InputOptions = DEFAULT_OPTIONS,
): InputResult {
  const attrs = req?.attributes;
  if (!attrs || typeof attrs !== 'object') return malformed('CheckRequest has no attributes');
  const http = attrs.request?.http;
  const source = peerModel(attrs.source);
  const destination = peerModel(attrs.destination);
  const contextExtensions = stringRecord(attrs.context_extensions);
  const timeMs = timestampMs(attrs.request?.time) ?? options.nowMs();
  const sni = str(attrs.tls_session?.sni);
  const filterMetadata = decodeFilterMetadata(attrs.metadata_context?.filter_metadata);

  const targets = options.targets ?? ServiceDirectory.DEFAULT;

  if (!http) {
    if (!attrs.source && !attrs.destination) {
      return malformed('CheckRequest has neither attributes.request.http nor source/destination peers');
    }
    const target = targets.resolve({
      kind: 'network',
      extensionService: contextExtensions.service ?? '',
      destinationPrincipal: destination.principal,
      host: canonicalHost(sni),
      destinationIp: destination.ip,
    });
    const input: RequestModel = {
      kind: 'network',
      method: '',
      path: '',
      rawPath: '',
      query: {},
      host: '',
      scheme: '',
      protocol: '',
      headers: {},
      headerCount: 0,
      source,
      destination,
      timeMs,
      contextExtensions,
      service: '',
      sni,
      requestId: '',
      filterMetadata,
      body: NO_BODY,
    };
    return withTarget(input, target);
  }

  const headerResult = collectHeaders(http);
  if (typeof headerResult === 'string') return { ok: false, reason: 'request_too_large', message: headerResult };
  const { headers, count } = headerResult;

  const method = (str(http.method) || headerResult.method || '').toUpperCase();
  if (!method) return malformed('attributes.request.http.method is missing');
  const rawPath = str(http.path) || headerResult.path || '';
  if (!rawPath) return malformed('attributes.request.http.path is missing');
  const hostWithPort = str(http.host) || headerResult.authority || (Object.hasOwn(headers, 'host') ? headers.host : '');
  const host = canonicalHost(hostWithPort);

  const q = rawPath.indexOf('?');
  const pathOnly = q === -1 ? rawPath : rawPath.slice(0, q);
  const normalized = normalizePath(pathOnly);
  if (!normalized.ok) return malformed(normalized.message);
  const queryString = str(http.query) || (q === -1 ? '' : rawPath.slice(q + 1));

  const input: RequestModel = {
    kind: 'http',
    method,
    path: normalized.path,
    rawPath: pathOnly,
    query: parseQuery(queryString),
    host,
    scheme: str(http.scheme) || headerResult.scheme || '',
    protocol: str(http.protocol),
    headers,
    headerCount: count,
    source,
    destination,
    timeMs,
    contextExtensions,
    service: '',
    sni,
    requestId: str(http.id) || (Object.hasOwn(headers, 'x-request-id') ? headers['x-request-id'] : ''),
    filterMetadata,
    body: requestBody(http, headers, options.bodyLimits),
  };
  const target = targets.resolve({
    kind: 'http',
    extensionService: contextExtensions.service ?? '',
    destinationPrincipal: destination.principal,
    host,
  });
  return withTarget(input, target);
}

/** The model with its resolved service, or the deny the resolution calls for (with the model, for the decision log). */
function withTarget(input: RequestModel, target: TargetResult): InputResult {
  if (target.ok) {
    input.service = target.service;
    return { ok: true, input };
  }
  if (target.reason === 'host_mismatch') {
    input.service = target.service;
    return { ok: false, reason: target.reason, message: target.message, input, mismatch: target.mismatch };
  }
  return { ok: false, reason: target.reason, message: target.message, input };
}

function malformed(message: string): InputResult {
  return { ok: false, reason: 'malformed_request', message };
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function stringRecord(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!v || typeof v !== 'object') return out;
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (typeof val === 'string') setOwn(out, k, val);
  }
  return out;
}

function peerModel(peer: WirePeer | undefined): PeerModel {
  const socket = peer?.address?.socket_address;
  const model: PeerModel = { principal: str(peer?.principal), service: str(peer?.service) };
  const ip = cedarIp(str(socket?.address));
  if (ip) model.ip = ip;
  const port = socket?.port_value;
  if (typeof port === 'number' && Number.isInteger(port) && port > 0 && port <= 65535) model.port = port;
  return model;
}

const MAPPED_IPV4 = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/**
 * The address as Cedar's ip() accepts it, or undefined. A dual-stack listener
 * reports IPv4 clients as ::ffff:a.b.c.d, which Cedar refuses (it takes no IPv4
 * embedded in IPv6), and one such address would fail every policy reading it:
 * the mapped form becomes plain IPv4, other embedded forms are left out. Zone
 * ids (fe80::1%eth0) are valid for Node but not for Cedar.
 */
export function cedarIp(s: string): string | undefined {
  const mapped = MAPPED_IPV4.exec(s);
  const ip = mapped ? mapped[1] : s;
  const family = isIP(ip);
  if (family === 4) return ip;
  if (family === 6 && !ip.includes('.') && !ip.includes('%')) return ip;
  return undefined;
}

function timestampMs(ts: { seconds?: string | number; nanos?: number } | undefined): number | undefined {
  if (!ts || ts.seconds === undefined) return undefined;
  const seconds = Number(ts.seconds);
  if (!Number.isFinite(seconds) || seconds <= 0) return undefined;
  const ms = seconds * 1000 + Math.floor((ts.nanos ?? 0) / 1e6);
  // Cedar datetimes are bounded; anything past year 9999 is not a real clock.
  return ms < 253402300800000 ? ms : undefined;
}

interface CollectedHeaders {
  headers: Record<string, string>;
  /** The pseudo-headers read as fallbacks for the http fields (the last of each name; the rest are left out). */
  authority: string | undefined;
  method: string | undefined;
  path: string | undefined;
  scheme: string | undefined;
  count: number;
}

/**
 * Envoy sends headers either as the `headers` map or, with encode_raw_headers,
 * as `header_map` whose entries carry `raw_value` bytes. Both are merged; repeated
 * names are joined with "," as HTTP allows.
 *
 * Built as a plain object in one pass (a null-prototype dictionary copied at
 * the end cost a check more than the rest of this function): a name already
 * present is found with `Object.hasOwn`, never through the prototype, and a
 * `__proto__` header becomes an own property, never the object's prototype.
 */
function collectHeaders(http: WireHttpRequest): CollectedHeaders | string {
  const out: CollectedHeaders = {
    headers: {},
    authority: undefined,
    method: undefined,
    path: undefined,
    scheme: undefined,
    count: 0,
  };
  let bytes = 0;
  const add = (rawKey: string, value: string): string | undefined => {
    const count = ++out.count;
    bytes += rawKey.length + value.length;
    if (count > MAX_HEADERS) return `request has more than ${MAX_HEADERS} headers`;
    if (bytes > MAX_HEADER_BYTES) return `request headers exceed ${MAX_HEADER_BYTES} bytes`;
    const key = rawKey.toLowerCase();
    if (key.charCodeAt(0) === 58 /* ':' */) {
      if (key === ':authority') out.authority = value;
      else if (key === ':method') out.method = value;
      else if (key === ':path') out.path = value;
      else if (key === ':scheme') out.scheme = value;
      return undefined;
    }
    const headers = out.headers;
    if (Object.hasOwn(headers, key)) headers[key] = `${headers[key]},${value}`;
    else if (key === '__proto__')
      Object.defineProperty(headers, key, { value, writable: true, enumerable: true, configurable: true });
    else headers[key] = value;
    return undefined;
  };
  if (http.headers && typeof http.headers === 'object') {
    for (const key in http.headers) {
      const value = http.headers[key];
      if (typeof value !== 'string') continue;
      const err = add(key, value);
      if (err) return err;
    }
  }
  const list = http.header_map?.headers;
  if (Array.isArray(list)) {
    for (const h of list as WireHeaderValue[]) {
      const key = str(h?.key);
      if (!key) continue;
      const value = h.raw_value && h.raw_value.length > 0 ? Buffer.from(h.raw_value).toString('utf8') : str(h.value);
      const err = add(key, value);
      if (err) return err;
    }
  }
  return out;
}

function parseQuery(qs: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!qs) return out;
  for (const pair of qs.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const k = safeDecode(eq === -1 ? pair : pair.slice(0, eq));
    const v = eq === -1 ? '' : safeDecode(pair.slice(eq + 1));
    // Own keys only: a parameter named "constructor" or "__proto__" is a parameter like any other.
    if (!Object.hasOwn(out, k)) setOwn(out, k, v);
  }
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

function decodeFilterMetadata(fm: Record<string, WireStruct> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!fm || typeof fm !== 'object') return out;
  for (const [k, v] of Object.entries(fm)) setOwn(out, k, structToJson(v, 0));
  return out;
}

const MAX_STRUCT_DEPTH = 32;

/** google.protobuf.Struct → plain JSON (proto-loader leaves Struct in its wire form). */
export function structToJson(s: WireStruct | undefined, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!s?.fields || depth > MAX_STRUCT_DEPTH) return out;
  for (const [k, v] of Object.entries(s.fields)) setOwn(out, k, valueToJson(v, depth + 1));
  return out;
}

/** `out[key] = value`, where a "__proto__" key is an own property, never the object's prototype. */
function setOwn(out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(out, key, { value, writable: true, enumerable: true, configurable: true });
  else out[key] = value;
}

function valueToJson(v: WireStructValue | undefined, depth: number): unknown {
  if (!v || depth > MAX_STRUCT_DEPTH) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.numberValue !== undefined) return v.numberValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.structValue !== undefined) return structToJson(v.structValue, depth);
  if (v.listValue !== undefined) return (v.listValue.values ?? []).map((x) => valueToJson(x, depth + 1));
  return null;
}
