/**
 * gRPC server reflection on the ext_authz port, so `grpcurl` and similar
 * tools can list and call the Authorization and Health services without our
 * .proto files. It only describes what the port already serves.
 */
import type * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { protoPackageDefinition } from '../envoy/protos.js';

export function addReflection(server: Pick<grpc.Server, 'addService'>): void {
  new ReflectionService(protoPackageDefinition()).addToServer(server);
}
