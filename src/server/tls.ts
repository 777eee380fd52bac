/**
 * gRPC listener credentials: plaintext h2c by default (a mesh sidecar or a
 * loopback hop provides transport security), TLS with a certificate, mTLS
 * when a client CA is configured.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { ConfigError } from '../config/load-config.js';
import type { Config } from '../config/schema.js';

function readPem(field: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(
      `invalid configuration:\n  ${field}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

export function grpcServerCredentials(
  config: Pick<Config, 'tlsCert' | 'tlsKey' | 'tlsClientCa'>,
): grpc.ServerCredentials {
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

/** The same certificate files for the node:http2 transport (`--transport http2`): undefined for plaintext. */
export function http2TlsOptions(
  config: Pick<Config, 'tlsCert' | 'tlsKey' | 'tlsClientCa'>,
): { cert: Buffer; key: Buffer; clientCa?: Buffer } | undefined {
  if (!config.tlsCert || !config.tlsKey) return undefined;
  const options = {
    cert: readPem('tlsCert', config.tlsCert),
    key: readPem('tlsKey', config.tlsKey),
    clientCa: config.tlsClientCa ? readPem('tlsClientCa', config.tlsClientCa) : undefined,
  };
  try {
    // Parse now, so a bad certificate or key stops start-up with the field named, as grpc-js's createSsl does.
    createSecureContext({ cert: options.cert, key: options.key, ca: options.clientCa });
  } catch (err) {
    throw new ConfigError(`invalid configuration:\n  tlsCert/tlsKey: ${(err as Error).message}`);
  }
  return options;
}
