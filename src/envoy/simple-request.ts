/**
 * The short request form used by `authz check` and bundle tests, turned into
 * the CheckRequest Envoy would send, so both go through the real mapping.
 *
 *   { "method": "GET", "path": "/orders/1", "host": "orders",
 *     "principal": "spiffe://cluster.local/ns/shop/sa/frontend",
 *     "headers": { "x-user": "alice" }, "sourceIp": "10.0.0.7",
 *     "contextExtensions": { "service": "orders" }, "time": "2026-01-01T10:00:00Z" }
 *
 * A document with an `attributes` key is taken as a CheckRequest as it is.
 */
import type { WireCheckRequest, WireHeaderValue, WireStruct, WireStructValue } from './wire-types.js';

export interface SimpleRequest {
  method?: string;
  path?: string;
  host?: string;
  scheme?: string;
  headers?: Record<string, string>;
  principal?: string;
  sourceIp?: string;
  sourcePort?: number;
  destinationIp?: string;
  destinationPort?: number;
  destinationPrincipal?: string;
  contextExtensions?: Record<string, string>;
  /** ISO-8601 time of the request. */
  time?: string;
  /** A network (TCP) check instead of HTTP. */
  network?: boolean;
  sni?: string;
  /** metadata_context.filter_metadata as plain JSON. */
  metadata?: Record<string, unknown>;
  /** The request body, as Envoy sends it with with_request_body (pack_as_bytes: false). */
  body?: string;
}

export function simpleRequestToCheckRequest(r: SimpleRequest | WireCheckRequest): WireCheckRequest {
  if ('attributes' in r) return r as WireCheckRequest;
  const s = r as SimpleRequest;
  const timeMs = s.time ? Date.parse(s.time) : NaN;
  if (s.time && Number.isNaN(timeMs)) throw new Error(`time "${s.time}" is not an ISO-8601 date`);
  const peer = (ip?: string, port?: number, principal?: string) => ({
    ...(ip ? { address: { socket_address: { address: ip, port_value: port ?? 0 } } } : {}),
    ...(principal ? { principal } : {}),
  });
  const attributes: NonNullable<WireCheckRequest['attributes']> = {
    source: peer(s.sourceIp, s.sourcePort, s.principal),
    destination: peer(s.destinationIp, s.destinationPort, s.destinationPrincipal),
    context_extensions: s.contextExtensions ?? {},
  };
  if (s.sni) attributes.tls_session = { sni: s.sni };
  if (s.metadata)
    attributes.metadata_context = {
      filter_metadata: Object.fromEntries(Object.entries(s.metadata).map(([k, v]) => [k, jsonToStruct(v)])),
    };
  const request: NonNullable<NonNullable<WireCheckRequest['attributes']>['request']> = {};
  if (!Number.isNaN(timeMs))
    request.time = { seconds: String(Math.floor(timeMs / 1000)), nanos: (timeMs % 1000) * 1e6 };
  if (!s.network) {
    const headers: WireHeaderValue[] = Object.entries(s.headers ?? {}).map(([key, value]) => ({ key, value }));
    const pathWithQuery = s.path ?? '/';
    request.http = {
      method: (s.method ?? 'GET').toUpperCase(),
      path: pathWithQuery,
      host: s.host ?? '',
      scheme: s.scheme ?? 'http',
      protocol: 'HTTP/1.1',
      headers: Object.fromEntries(headers.map((h) => [h.key!.toLowerCase(), h.value!])),
      ...(s.body !== undefined ? { body: s.body } : {}),
    };
  }
  attributes.request = request;
  return { attributes };
}

function jsonToStruct(v: unknown): WireStruct {
  const fields: Record<string, WireStructValue> = {};
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) fields[k] = jsonToValue(x);
  }
  return { fields };
}

function jsonToValue(v: unknown): WireStructValue {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(jsonToValue) } };
  return { structValue: jsonToStruct(v) };
}
