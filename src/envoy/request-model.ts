/**
 * Our own model of one request to authorise: what Envoy told us, normalised,
 * with nothing Cedar-specific yet. Built by `checkRequestToInput`.
 */
export interface PeerModel {
  /** IP address, when the peer has a socket address. */
  ip?: string;
  port?: number;
  /** mTLS identity (URI SAN), e.g. spiffe://cluster.local/ns/shop/sa/frontend. */
  principal: string;
  service: string;
}

export interface RequestModel {
  kind: 'http' | 'network';
  /** Upper-case HTTP method; empty for network checks. */
  method: string;
  /** Path without the query string. */
  path: string;
  /** First value of each query parameter. */
  query: Record<string, string>;
  /** Lower-case host without the port. */
  host: string;
  scheme: string;
  protocol: string;
  /** Lower-case names, pseudo-headers left out; repeated headers joined by ",". */
  headers: Record<string, string>;
  headerCount: number;
  source: PeerModel;
  destination: PeerModel;
  /** Epoch milliseconds of request.time, or of arrival when Envoy sent none. */
  timeMs: number;
  contextExtensions: Record<string, string>;
  /** Cedar resource id: Service::"<service>". */
  service: string;
  sni: string;
  requestId: string;
  /** metadata_context.filter_metadata, decoded from protobuf Struct to plain JSON. */
  filterMetadata: Record<string, unknown>;
}

export type InputResult = { ok: true; input: RequestModel } | { ok: false; reason: 'malformed_request' | 'request_too_large'; message: string };
