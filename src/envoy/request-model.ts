/**
 * Our own model of one request to authorise: what Envoy told us, normalised,
 * with nothing Cedar-specific yet. Built by `checkRequestToInput`.
 */
import type { RequestBody } from './request-body.js';
import type { HostMismatch } from './target-service.js';

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
  /** Path without the query string, normalised as Envoy's normalize_path + merge_slashes do (path-normalization.ts). */
  path: string;
  /** Path without the query string, exactly as Envoy sent it. */
  rawPath: string;
  /** First value of each query parameter. */
  query: Record<string, string>;
  /** Canonical host: lower-case, without port or trailing dot (service-names.ts). */
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
  /** Cedar resource id: Service::"<service>", resolved in the order target-service.ts documents. */
  service: string;
  sni: string;
  requestId: string;
  /** metadata_context.filter_metadata, decoded from protobuf Struct to plain JSON. */
  filterMetadata: Record<string, unknown>;
  /** The body Envoy forwarded (with_request_body), decoded and parsed only when asked (request-body.ts). */
  body: RequestBody;
}

export type InputResult =
  | { ok: true; input: RequestModel }
  | {
      ok: false;
      reason: 'malformed_request' | 'request_too_large' | 'host_mismatch' | 'no_destination_identity';
      message: string;
      /** The request as far as it was read, when the refusal is about its target (for the decision log). */
      input?: RequestModel;
      /** Both names of a host_mismatch. */
      mismatch?: HostMismatch;
    };
