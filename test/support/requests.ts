/** CheckRequests in the shapes Envoy actually sends. */
import type { SimpleRequest } from '../../src/envoy/simple-request.js';
import type { WireCheckRequest } from '../../src/envoy/wire-types.js';

export const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
export const ORDERS = 'spiffe://cluster.local/ns/shop/sa/orders';
export const ADMIN_CONSOLE = 'spiffe://cluster.local/ns/ops/sa/admin-console';

/** GET /x on host svc: the request the bundle fixtures' `open` and `closed` variants answer. */
export const GET_X: SimpleRequest = { method: 'GET', path: '/x', host: 'svc' };

/** An Istio sidecar's check: mTLS principals, :authority host with port, headers map. */
export function istioRequest(opts: {
  principal?: string;
  method?: string;
  path?: string;
  host?: string;
  headers?: Record<string, string>;
  ext?: Record<string, string>;
  /** The sidecar's own identity (the workload called); orders by default. */
  destination?: string;
}): WireCheckRequest {
  const host = opts.host ?? 'orders.shop.svc.cluster.local:8080';
  return {
    attributes: {
      source: {
        address: { socket_address: { address: '10.244.1.17', port_value: 43512 } },
        ...(opts.principal ? { principal: opts.principal } : {}),
      },
      destination: {
        address: { socket_address: { address: '10.244.2.9', port_value: 8080 } },
        principal: opts.destination ?? ORDERS,
      },
      request: {
        time: { seconds: '1790000000', nanos: 5000000 },
        http: {
          id: '9147215328571926544',
          method: opts.method ?? 'GET',
          headers: {
            ':authority': host,
            ':method': opts.method ?? 'GET',
            ':path': opts.path ?? '/orders/17',
            ':scheme': 'http',
            'x-request-id': 'f4a1c0de-0000-4000-8000-000000000001',
            'user-agent': 'curl/8.5.0',
            ...(opts.headers ?? {}),
          },
          path: opts.path ?? '/orders/17',
          host,
          scheme: 'http',
          protocol: 'HTTP/1.1',
        },
      },
      context_extensions: opts.ext ?? {},
    },
  };
}

/** A front proxy's check with encode_raw_headers: headers arrive in header_map as raw bytes. */
export function rawHeaderRequest(opts: {
  method: string;
  path: string;
  host: string;
  headers: Record<string, string>;
  ext?: Record<string, string>;
}): WireCheckRequest {
  return {
    attributes: {
      source: { address: { socket_address: { address: '203.0.113.9', port_value: 51000 } } },
      destination: { address: { socket_address: { address: '10.0.0.2', port_value: 8080 } } },
      request: {
        http: {
          method: opts.method,
          path: opts.path,
          host: opts.host,
          scheme: 'https',
          protocol: 'HTTP/2',
          header_map: {
            headers: [
              { key: ':authority', raw_value: Buffer.from(opts.host) },
              { key: ':path', raw_value: Buffer.from(opts.path) },
              ...Object.entries(opts.headers).map(([key, v]) => ({ key, raw_value: Buffer.from(v) })),
            ],
          },
        },
      },
      context_extensions: opts.ext ?? {},
    },
  };
}
