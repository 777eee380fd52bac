/**
 * What the identity/context component tests share: a real server on loopback
 * started from config (as `serve` would), the shared grpc-js client, a JWKS served
 * over node:http, and signing keys made with jose.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type CryptoKey } from 'jose';
import { simpleRequestToCheckRequest, type SimpleRequest } from '../../src/envoy/simple-request.js';
import type { WireCheckRequest, WireCheckResponse } from '../../src/envoy/wire-types.js';
import type { RunningServer } from '../../src/server/authz-server.js';
import { metricsText } from '../support/admin-http.js';
import { connectAuthz } from '../support/grpc-client.js';
import { startQuietServer } from '../support/start-server.js';

export interface Answer {
  allowed: boolean;
  /** HTTP status Envoy would send downstream (200 when allowed). */
  status: number;
  headers: Record<string, string>;
  message?: string;
  policies?: string[];
}

export interface ContextServer {
  running: RunningServer;
  /** `deadlineMs`: the gRPC deadline of the call, as Envoy's ext_authz `timeout` sets it. */
  check(req: SimpleRequest | WireCheckRequest, deadlineMs?: number): Promise<Answer>;
  metrics(): Promise<string>;
  close(): Promise<void>;
}

export async function startContextServer(settings: Record<string, unknown>): Promise<ContextServer> {
  const running = await startQuietServer(settings);
  const client = connectAuthz(running.grpcPort);
  return {
    running,
    // Without a deadline the call waits as long as the server takes (Infinity is grpc-js's "no deadline").
    check: async (req, deadlineMs) =>
      toAnswer(await client.check(simpleRequestToCheckRequest(req), deadlineMs ?? Number.POSITIVE_INFINITY)),
    metrics: () => metricsText(running.adminPort),
    close: async () => {
      client.close();
      await running.close();
    },
  };
}

function toAnswer(res: WireCheckResponse): Answer {
  if (res.status.code === 0) {
    const headers: Record<string, string> = {};
    for (const h of res.ok_response?.headers ?? []) headers[h.header.key] = h.header.value;
    return { allowed: true, status: 200, headers };
  }
  const denied = res.denied_response!;
  const headers: Record<string, string> = {};
  for (const h of denied.headers) headers[h.header.key] = h.header.value;
  const body = JSON.parse(denied.body) as { message: string; policies: string[] };
  return { allowed: false, status: denied.status.code, headers, message: body.message, policies: body.policies };
}

/** A policy directory on disk, removed by `cleanup`. */
export async function policyDir(files: Record<string, string>): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'authz-ctx-'));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  }
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/** ES256 by default: as real as RS256 for these tests, and key generation is much faster. */
export async function signingKey(kid: string, alg = 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicJwk };
}

export const ISSUER = 'https://idp.test.example/';
export const AUDIENCE = 'shop-api';

/** A token from `key`; claims default to a valid one-hour token for alice. */
export async function token(
  key: SigningKey,
  claims: JWTPayload = {},
  options: { expiresIn?: string | number; audience?: string; issuer?: string } = {},
): Promise<string> {
  return new SignJWT({ sub: 'alice', ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '1h')
    .sign(key.privateKey);
}

/** An unsecured JWT ("alg": "none") with the given claims. */
export function unsignedToken(claims: JWTPayload): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`;
}

/**
 * A JWKS endpoint on loopback whose keys the test can change (key rotation),
 * and which can fail (HTTP 500) or hang (never answer) on demand.
 */
export class JwksServer {
  keys: JWK[] = [];
  mode: 'ok' | 'fail' | 'hang' = 'ok';
  requests = 0;
  /** Requests open at once, now and at most. */
  open = 0;
  maxOpen = 0;
  private readonly server = http.createServer((_req, res) => {
    this.requests++;
    this.maxOpen = Math.max(this.maxOpen, ++this.open);
    res.on('close', () => this.open--);
    if (this.mode === 'hang') return;
    if (this.mode === 'fail') {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('identity provider down');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: this.keys }));
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/.well-known/jwks.json`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export const GATEWAY = 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account';
export const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
