/** Real grpc-js clients for the server under test, built from our protos. */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import { healthService, PROTO_DIR, PROTO_LOADER_OPTIONS } from '../../src/envoy/protos.js';
import type { WireCheckRequest, WireCheckResponse } from '../../src/envoy/wire-types.js';

export interface AuthzClient {
  check(req: WireCheckRequest, deadlineMs?: number): Promise<WireCheckResponse>;
  health(service: string): Promise<string>;
  close(): void;
}

/** Our own client decodes enums as numbers so tests read HTTP statuses as Envoy does. */
function authorizationClientCtor(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync(path.join(PROTO_DIR, 'envoy/service/auth/v3/external_auth.proto'), { ...PROTO_LOADER_OPTIONS, enums: Number });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } } };
  return pkg.envoy.service.auth.v3.Authorization;
}

export function connectAuthz(port: number, credentials = grpc.credentials.createInsecure(), options: grpc.ClientOptions = {}): AuthzClient {
  const Authorization = authorizationClientCtor();
  const Health = healthService();
  const address = `127.0.0.1:${port}`;
  const authz = new Authorization(address, credentials, options);
  const health = new Health(address, credentials, options);
  return {
    check(req, deadlineMs = 5000) {
      return new Promise((resolve, reject) => {
        (authz as unknown as { Check: Function }).Check(req, { deadline: Date.now() + deadlineMs }, (err: Error | null, res: WireCheckResponse) =>
          err ? reject(err) : resolve(res),
        );
      });
    },
    health(service) {
      return new Promise((resolve, reject) => {
        (health as unknown as { Check: Function }).Check({ service }, (err: Error | null, res: { status: string }) => (err ? reject(err) : resolve(res.status)));
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

export function denyBody(res: WireCheckResponse): { decision: string; message: string; policies: string[]; decision_id: string } {
  return JSON.parse(res.denied_response!.body);
}
