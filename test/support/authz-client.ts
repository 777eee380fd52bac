/**
 * A real grpc-js client of the Authorization service, and small readers of
 * the admin endpoints, for component tests.
 */
import * as grpc from '@grpc/grpc-js';
import { authorizationService } from '../../src/envoy/protos.js';
import { simpleRequestToCheckRequest, type SimpleRequest } from '../../src/envoy/simple-request.js';
import type { WireCheckResponse } from '../../src/envoy/wire-types.js';
import { readCheckResponse, type RemoteAnswer } from '../../src/cli/remote-check.js';

export class AuthzClient {
  private readonly client: InstanceType<ReturnType<typeof authorizationService>>;

  constructor(port: number) {
    const Client = authorizationService();
    this.client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  }

  check(request: SimpleRequest): Promise<RemoteAnswer> {
    return new Promise((resolve, reject) => {
      this.client.Check(simpleRequestToCheckRequest(request), (err: grpc.ServiceError | null, res: WireCheckResponse) =>
        err ? reject(err) : resolve(readCheckResponse(res)),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}

export const GET_X: SimpleRequest = { method: 'GET', path: '/x', host: 'svc' };

export async function adminJson(port: number, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.json() };
}

/** The value of one sample in the Prometheus text, e.g. metric('authz_bundle_loads_total{result="error"}'). */
export async function metricValue(port: number, sample: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : NaN;
}

/** Poll `probe` every 25 ms until it returns a value for which `done` holds, or until `withinMs` has passed. */
export async function waitFor<T>(probe: () => Promise<T>, done: (v: T) => boolean, withinMs: number): Promise<T> {
  const deadline = Date.now() + withinMs;
  let last = await probe();
  while (!done(last) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    last = await probe();
  }
  return last;
}
