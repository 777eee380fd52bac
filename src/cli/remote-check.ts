/**
 * `authz check --server HOST:PORT`: send the CheckRequest to a running server
 * over gRPC, as Envoy would, and say what it answered. Lets you watch a
 * server's decisions change as bundles are activated and rolled back.
 */
import * as grpc from '@grpc/grpc-js';
import { authorizationService } from '../envoy/protos.js';
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
    httpStatus: allowed ? 200 : (res.denied_response?.status.code ?? 403),
    message: allowed ? 'allowed' : (body.message ?? res.status.message ?? ''),
    policies: body.policies ?? [],
    version: str('policy_version'),
    decisionId: str('decision_id'),
  };
}
