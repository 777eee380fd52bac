/**
 * The one gRPC client of the server under test: a real grpc-js client of the
 * Authorization and Health services, built from our protos.
 */
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { readCheckResponse, type RemoteAnswer } from '../../src/cli/remote-check.js';
import { healthService, PROTO_DIR, PROTO_LOADER_OPTIONS } from '../../src/envoy/protos.js';
import { simpleRequestToCheckRequest, type SimpleRequest } from '../../src/envoy/simple-request.js';
import type { WireCheckRequest, WireCheckResponse } from '../../src/envoy/wire-types.js';

/** How long a test's call may take before it fails with DEADLINE_EXCEEDED. */
const DEFAULT_CALL_DEADLINE_MS = 5000;

export interface AuthzClient {
  /** The raw CheckResponse, as Envoy would receive it. */
  check(req: WireCheckRequest, deadlineMs?: number): Promise<WireCheckResponse>;
  /** A simple request's answer in our terms (allowed, reason, version, ...), as `authz check --server` reads it. */
  answer(request: SimpleRequest): Promise<RemoteAnswer>;
  health(service: string): Promise<string>;
  close(): void;
}

type Callback<T> = (err: Error | null, res: T) => void;
interface CheckStub {
  Check(req: WireCheckRequest, options: grpc.CallOptions, callback: Callback<WireCheckResponse>): void;
}
interface HealthStub {
  Check(req: { service: string }, callback: Callback<{ status: string }>): void;
}

/** Our own client decodes enums as numbers so tests read HTTP statuses as Envoy does. */
function authorizationClientCtor(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync(path.join(PROTO_DIR, 'envoy/service/auth/v3/external_auth.proto'), {
    ...PROTO_LOADER_OPTIONS,
    enums: Number,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } };
  };
  return pkg.envoy.service.auth.v3.Authorization;
}

export function connectAuthz(
  port: number,
  credentials = grpc.credentials.createInsecure(),
  options: grpc.ClientOptions = {},
): AuthzClient {
  const Authorization = authorizationClientCtor();
  const Health = healthService();
  const address = `127.0.0.1:${port}`;
  const authz = new Authorization(address, credentials, options);
  const health = new Health(address, credentials, options);
  const check = (req: WireCheckRequest, deadlineMs = DEFAULT_CALL_DEADLINE_MS): Promise<WireCheckResponse> =>
    new Promise((resolve, reject) => {
      (authz as unknown as CheckStub).Check(req, { deadline: Date.now() + deadlineMs }, (err, res) =>
        err ? reject(err) : resolve(res),
      );
    });
  return {
    check,
    async answer(request) {
      return readCheckResponse(await check(simpleRequestToCheckRequest(request)));
    },
    health(service) {
      return new Promise((resolve, reject) => {
        (health as unknown as HealthStub).Check({ service }, (err, res) => (err ? reject(err) : resolve(res.status)));
      });
    },
    close() {
      authz.close();
      health.close();
    },
  };
}

/** Header value from a CheckResponse header list. */
export function headerOf(res: WireCheckResponse, name: string): string | undefined {
  const list = res.denied_response?.headers ?? res.ok_response?.headers ?? [];
  return list.find((h) => h.header.key === name)?.header.value;
}

export function denyBody(res: WireCheckResponse): {
  decision: string;
  message: string;
  policies: string[];
  decision_id: string;
} {
  return JSON.parse(res.denied_response!.body);
}
