/**
 * gRPC server reflection, as grpcurl uses it, over both transports: the real
 * server lists the Authorization and Health services without our .proto
 * files and describes them (file_containing_symbol, as `grpcurl describe`
 * asks); switched off, the port answers UNIMPLEMENTED.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { FileDescriptorProto } from 'protobufjs/ext/descriptor/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRANSPORTS } from '../../src/config/transport-schema.js';
import { EXAMPLE_POLICIES } from '../support/policy-dir.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

const REFLECTION_PROTO_DIR = path.join(
  path.dirname(createRequire(import.meta.url).resolve('@grpc/reflection/package.json')),
  'build/proto',
);

/** The parts of a FileDescriptorProto these tests read. */
interface FileDescriptor {
  package?: string;
  messageType?: { name: string }[];
  service?: { name: string; method?: { name: string; inputType: string; outputType: string }[] }[];
}

interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

/**
 * Requests sent one after another on one ServerReflectionInfo stream (v1, or
 * grpcurl's older v1alpha), as grpcurl does; resolves with the answers once
 * the server ends the call after the client's half-close.
 */
function reflect(port: number, version: 'v1' | 'v1alpha', requests: object[]): Promise<ReflectionResponse[]> {
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
  return new Promise<ReflectionResponse[]>((resolve, reject) => {
    const call = (
      client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<object, ReflectionResponse> }
    ).ServerReflectionInfo();
    const answers: ReflectionResponse[] = [];
    const pending = [...requests];
    // The next request only after the previous answer: the order grpcurl uses.
    call.on('data', (res) => {
      answers.push(res);
      const next = pending.shift();
      if (next) call.write(next);
      else call.end();
    });
    call.on('status', (status) => (status.code === grpc.status.OK ? resolve(answers) : undefined));
    call.on('error', reject);
    call.write(pending.shift()!);
  }).finally(() => client.close());
}

async function listServices(port: number, version: 'v1' | 'v1alpha'): Promise<string[]> {
  const [answer] = await reflect(port, version, [{ list_services: '' }]);
  return (answer.list_services_response?.service ?? []).map((s) => s.name);
}

describe.each(TRANSPORTS)('gRPC reflection over the %s transport', (transport) => {
  let server: TestServer;
  let withoutReflection: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ policies: EXAMPLE_POLICIES, transport });
    withoutReflection = await startTestServer({ policies: EXAMPLE_POLICIES, grpcReflection: 'false', transport });
  });
  afterAll(async () => {
    await server.close();
    await withoutReflection.close();
  });

  it.each(['v1', 'v1alpha'] as const)('lists the Authorization and Health services (%s)', async (version) => {
    const services = await listServices(server.grpcPort, version);
    expect(services).toContain('envoy.service.auth.v3.Authorization');
    expect(services).toContain('grpc.health.v1.Health');
  });

  it('describes the Check method from its file descriptor, and says NOT_FOUND for an unknown symbol, on one stream', async () => {
    const answers = await reflect(server.grpcPort, 'v1', [
      { list_services: '' },
      { file_containing_symbol: 'envoy.service.auth.v3.Authorization' },
      { file_containing_symbol: 'no.such.Service' },
    ]);
    expect(answers).toHaveLength(3);
    const files = answers[1].file_descriptor_response!.file_descriptor_proto.map(
      (bytes) => FileDescriptorProto.decode(bytes) as unknown as FileDescriptor,
    );
    const service = files.flatMap((f) => f.service ?? []).find((s) => s.name === 'Authorization');
    expect(service?.method?.map((m) => [m.name, m.inputType, m.outputType])).toEqual([
      ['Check', '.envoy.service.auth.v3.CheckRequest', '.envoy.service.auth.v3.CheckResponse'],
    ]);
    // Every message type the method names is in the files sent (grpcurl needs them to build a request).
    const messages = new Set(files.flatMap((f) => (f.messageType ?? []).map((m) => `.${f.package}.${m.name}`)));
    expect(messages).toContain('.envoy.service.auth.v3.CheckRequest');
    expect(answers[2].error_response).toMatchObject({ error_code: grpc.status.NOT_FOUND });
  });

  it('is off when switched off', async () => {
    await expect(listServices(withoutReflection.grpcPort, 'v1')).rejects.toMatchObject({
      code: grpc.status.UNIMPLEMENTED,
    });
  });
});
