/**
 * The CheckRequests the benchmark sends, pre-encoded as gRPC frames so the
 * client spends nothing per request but a write: one "repeated" request (an
 * Istio sidecar's check with a dozen headers), and pools of "distinct" ones
 * (caller, service, method, path and tenant header vary, so every one is a
 * different cache key and most are decided by Cedar).
 */
import { authorizationService } from '../src/envoy/protos.js';
import type { WireCheckRequest } from '../src/envoy/wire-types.js';
import { serviceName, workloadId } from './generate-bundle.js';

export const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

const serialize = (req: WireCheckRequest): Buffer =>
  authorizationService().service.Check.requestSerialize(req) as Buffer;

/** gRPC length-prefixed message: 1 byte compressed flag, 4 bytes big-endian length. */
export function grpcFrame(message: Buffer): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  return frame;
}

export interface RequestShape {
  caller: number;
  /** A caller outside the mesh's workloads (its own SPIFFE id); `caller` is ignored then. */
  principal?: string;
  service: number;
  method: string;
  path: string;
  tenant?: string;
}

export function checkRequest(shape: RequestShape, services: number): WireCheckRequest {
  const host = `${serviceName(shape.service, services)}:8080`;
  const headers: Record<string, string> = {
    ':authority': host,
    ':method': shape.method,
    ':path': shape.path,
    ':scheme': 'http',
    'user-agent': 'bench-client/1.0',
    accept: 'application/json',
    'accept-encoding': 'gzip, deflate',
    'content-type': 'application/json',
    'x-request-id': '6a0d2e8c-4f0b-4f5e-9c1e-2f4b7c9d0e11',
    'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7',
    'x-b3-spanid': 'e457b5a2e4d86bd1',
    'x-b3-sampled': '1',
    'x-forwarded-proto': 'http',
    'x-envoy-attempt-count': '1',
    'x-forwarded-client-cert': `By=spiffe://cluster.local/ns/bench/sa/${serviceName(shape.service, services)};URI=${shape.principal ?? workloadId(shape.caller, services)}`,
  };
  if (shape.tenant) headers['x-tenant'] = shape.tenant;
  return {
    attributes: {
      source: {
        address: {
          socket_address: {
            address: `10.244.${shape.caller % 250}.${(shape.caller * 7) % 250}`,
            port_value: 40000 + (shape.caller % 20000),
          },
        },
        principal: shape.principal ?? workloadId(shape.caller, services),
      },
      destination: {
        address: { socket_address: { address: '10.245.0.10', port_value: 8080 } },
        principal: workloadId(shape.service, services),
      },
      request: {
        time: { seconds: String(Math.floor(Date.now() / 1000)), nanos: 0 },
        http: {
          id: '12391284712',
          method: shape.method,
          headers,
          path: shape.path,
          host,
          scheme: 'http',
          protocol: 'HTTP/1.1',
        },
      },
    },
  };
}

export function encode(shape: RequestShape, services: number): Buffer {
  return grpcFrame(serialize(checkRequest(shape, services)));
}

/** The repeated request: svc-001's caller reading svc-002's API (allowed). */
export const REPEATED_SHAPE: RequestShape = { caller: 1, service: 2, method: 'GET', path: '/api/items/42' };

/**
 * `count` distinct requests: caller i+1 → service i with GET on /api/items/<k> (allowed by
 * `<svc>-read-prev`), interleaved with writes carrying a tenant header, and calls from
 * strangers that no permit covers. Each has its own path, so its own cache key.
 */
export function distinctShapes(count: number, services: number, offset = 0): RequestShape[] {
  const out: RequestShape[] = [];
  for (let k = offset; k < offset + count; k++) {
    const service = k % services;
    // Kind from the quotient, not k % 4: with 100 services, k % 4 would give each service one kind only.
    const kind = Math.floor(k / services) % 4;
    if (kind === 0 || kind === 1) out.push({ caller: service - 1, service, method: 'GET', path: `/api/items/${k}` });
    else if (kind === 2)
      out.push({ caller: service + 1, service, method: 'POST', path: `/api/items/${k}`, tenant: `t-${service}` });
    else out.push({ caller: service + 40, service, method: 'GET', path: `/api/other/${k}` });
  }
  return out;
}
