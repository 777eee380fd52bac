/**
 * gRPC listener credentials: plaintext h2c by default (a mesh sidecar or a
 * loopback hop provides transport security), TLS with a certificate, mTLS
 * when a client CA is configured.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { ConfigError } from '../config/load-config.js';
import type { Config } from '../config/schema.js';

function readPem(field: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(`invalid configuration:\n  ${field}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function grpcServerCredentials(config: Pick<Config, 'tlsCert' | 'tlsKey' | 'tlsClientCa'>): grpc.ServerCredentials {
  if (!config.tlsCert || !config.tlsKey) return grpc.ServerCredentials.createInsecure();
  const keyCert = { cert_chain: readPem('tlsCert', config.tlsCert), private_key: readPem('tlsKey', config.tlsKey) };
  const clientCa = config.tlsClientCa ? readPem('tlsClientCa', config.tlsClientCa) : null;
  try {
    return grpc.ServerCredentials.createSsl(clientCa, [keyCert], clientCa !== null);
  } catch (err) {
    throw new ConfigError(`invalid configuration:\n  tlsCert/tlsKey: ${(err as Error).message}`);
  }
}

export function tlsMode(config: Pick<Config, 'tlsCert' | 'tlsClientCa'>): 'plaintext' | 'tls' | 'mtls' {
  if (!config.tlsCert) return 'plaintext';
  return config.tlsClientCa ? 'mtls' : 'tls';
}
