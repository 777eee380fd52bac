/**
 * gRPC server reflection, as grpcurl uses it: the real server lists the
 * Authorization service without our .proto files; switched off, the port
 * answers UNIMPLEMENTED.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLE_POLICIES } from '../support/policy-dir.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

const REFLECTION_PROTO_DIR = path.join(
  path.dirname(createRequire(import.meta.url).resolve('@grpc/reflection/package.json')),
  'build/proto',
);

/** One list_services call over the ServerReflectionInfo stream (v1, or grpcurl's older v1alpha). */
function listServices(port: number, version: 'v1' | 'v1alpha'): Promise<string[]> {
  const def = protoLoader.loadSync(path.join(REFLECTION_PROTO_DIR, `grpc/reflection/${version}/reflection.proto`), {
    keepCase: true,
    includeDirs: [REFLECTION_PROTO_DIR],
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    grpc: { reflection: Record<string, { ServerReflection: grpc.ServiceClientConstructor }> };
  };
  const client = new pkg.grpc.reflection[version].ServerReflection(
    `127.0.0.1:${port}`,
    grpc.credentials.createInsecure(),
  );
  return new Promise<string[]>((resolve, reject) => {
    const call = (
      client as unknown as {
        ServerReflectionInfo(): grpc.ClientDuplexStream<
          unknown,
          { list_services_response?: { service: { name: string }[] } }
        >;
      }
    ).ServerReflectionInfo();
    call.on('data', (res) => {
      resolve((res.list_services_response?.service ?? []).map((s: { name: string }) => s.name));
      call.end();
    });
    call.on('error', reject);
    call.write({ list_services: '' });
  }).finally(() => client.close());
}

let server: TestServer;
let withoutReflection: TestServer;
beforeAll(async () => {
  server = await startTestServer({ policies: EXAMPLE_POLICIES });
  withoutReflection = await startTestServer({ policies: EXAMPLE_POLICIES, grpcReflection: 'false' });
});
afterAll(async () => {
  await server.close();
  await withoutReflection.close();
});

describe('gRPC reflection', () => {
  it.each(['v1', 'v1alpha'] as const)('lists the Authorization and Health services (%s)', async (version) => {
    const services = await listServices(server.grpcPort, version);
    expect(services).toContain('envoy.service.auth.v3.Authorization');
    expect(services).toContain('grpc.health.v1.Health');
  });

  it('is off when switched off', async () => {
    await expect(listServices(withoutReflection.grpcPort, 'v1')).rejects.toMatchObject({
      code: grpc.status.UNIMPLEMENTED,
    });
  });
});
