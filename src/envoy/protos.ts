/**
 * Loads our own wire-compatible .proto definitions (see protos/) once per process.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import * as grpc from '@grpc/grpc-js';

export const PROTO_DIR = fileURLToPath(new URL('../../protos/', import.meta.url));

/** Decoding options: these decide the shapes in `wire-types.ts`. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: false,
  oneofs: false,
  includeDirs: [PROTO_DIR],
};

const PROTO_FILES = ['envoy/service/auth/v3/external_auth.proto', 'grpc/health/v1/health.proto'];

let cached: grpc.GrpcObject | undefined;
let cachedDefinition: protoLoader.PackageDefinition | undefined;

/** The services' definitions with their file descriptors (what gRPC reflection serves). */
export function protoPackageDefinition(): protoLoader.PackageDefinition {
  return (cachedDefinition ??= protoLoader.loadSync(
    PROTO_FILES.map((f) => path.join(PROTO_DIR, f)),
    PROTO_LOADER_OPTIONS,
  ));
}

export function loadProtos(): grpc.GrpcObject {
  return (cached ??= grpc.loadPackageDefinition(protoPackageDefinition()));
}

type ServiceCtor = grpc.ServiceClientConstructor;

function lookup(dotted: string): ServiceCtor {
  let node: unknown = loadProtos();
  for (const part of dotted.split('.')) node = (node as Record<string, unknown>)[part];
  if (!node) throw new Error(`proto service ${dotted} not found`);
  return node as ServiceCtor;
}

export const AUTHORIZATION_SERVICE_NAME = 'envoy.service.auth.v3.Authorization';
export const HEALTH_SERVICE_NAME = 'grpc.health.v1.Health';

export function authorizationService(): ServiceCtor {
  return lookup(AUTHORIZATION_SERVICE_NAME);
}

export function healthService(): ServiceCtor {
  return lookup(HEALTH_SERVICE_NAME);
}
