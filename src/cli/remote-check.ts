/**
 * `authz check --server HOST:PORT`: send the CheckRequest to a running server
 * over gRPC, as Envoy would, and say what it answered. Lets you watch a
 * server's decisions change as bundles are activated and rolled back.
 */
import * as grpc from '@grpc/grpc-js';
import { authorizationService, loadProtos } from '../envoy/protos.js';
import type { WireCheckRequest, WireCheckResponse } from '../envoy/wire-types.js';

const REMOTE_CHECK_DEADLINE_MS = 5_000;

export function askServer(address: string, request: WireCheckRequest): Promise<WireCheckResponse> {
  const Client = authorizationService();
  const client = new Client(address, grpc.credentials.createInsecure());
  return new Promise<WireCheckResponse>((resolve, reject) => {
    client.Check(request, { deadline: Date.now() + REMOTE_CHECK_DEADLINE_MS }, (err: grpc.ServiceError | null, res: WireCheckResponse) =>
      err ? reject(new Error(`${address}: ${err.details || err.message}`)) : resolve(res),
    );
  }).finally(() => client.close());
}

let statusNumbers: Map<string, number> | undefined;

/**
 * The loader decodes enums as names (enums: String), so a denied response's
 * HTTP status arrives as "Forbidden"; the proto's own enum maps it back.
 */
export function httpStatusNumber(code: number | string | undefined): number | undefined {
  if (typeof code === 'number' || code === undefined) return code;
  if (!statusNumbers) {
    type EnumNode = { type: { value: { name: string; number: number }[] } };
    const e = (loadProtos().envoy as unknown as { type: { v3: { StatusCode: EnumNode } } }).type.v3.StatusCode;
    statusNumbers = new Map(e.type.value.map((v) => [v.name, v.number]));
  }
  return statusNumbers.get(code) ?? (/^\d+$/.test(code) ? Number(code) : undefined);
}

export interface RemoteAnswer {
  allowed: boolean;
  httpStatus: number;
  message: string;
  policies: string[];
  version: string;
  decisionId: string;
}

/** What a CheckResponse says, in our terms (the deny body carries message and policies). */
export function readCheckResponse(res: WireCheckResponse): RemoteAnswer {
  const meta = res.dynamic_metadata?.fields ?? {};
  const str = (k: string): string => meta[k]?.stringValue ?? '';
  const allowed = res.status.code === 0;
  let body: { message?: string; policies?: string[] } = {};
  try {
    body = res.denied_response?.body ? JSON.parse(res.denied_response.body) : {};
  } catch {
    body = { message: res.denied_response?.body };
  }
  return {
    allowed,
    httpStatus: allowed ? 200 : (httpStatusNumber(res.denied_response?.status.code as number | string | undefined) ?? 403),
    message: allowed ? 'allowed' : (body.message ?? res.status.message ?? ''),
    policies: body.policies ?? [],
    version: str('policy_version'),
    decisionId: str('decision_id'),
  };
}
