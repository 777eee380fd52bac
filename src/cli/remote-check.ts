/**
 * `authz check --server HOST:PORT`: send the CheckRequest to a running server
 * over gRPC, as Envoy would, and say what it answered. Lets you watch a
 * server's decisions change as bundles are activated and rolled back.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { UsageError } from './command-framework.js';
import { authorizationService, loadProtos } from '../envoy/protos.js';
import type { WireCheckRequest, WireCheckResponse } from '../envoy/wire-types.js';

const REMOTE_CHECK_DEADLINE_MS = 5_000;

/** PEM files for a TLS connection: the CA that signed the server, and our certificate for mTLS. */
export interface RemoteTls {
  ca?: string;
  cert?: string;
  key?: string;
}

function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(
      `${flag} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
}

/** Plaintext without TLS flags (as Envoy speaks h2c to a sidecar-fronted server); TLS, or mTLS with a client certificate. */
export function remoteCredentials(tls: RemoteTls): grpc.ChannelCredentials {
  if (!tls.ca && !tls.cert && !tls.key) return grpc.credentials.createInsecure();
  if (!!tls.cert !== !!tls.key)
    throw new UsageError('--tls-cert and --tls-key go together (the client certificate for mTLS)');
  return grpc.credentials.createSsl(
    tls.ca ? readPem('--tls-ca', tls.ca) : null,
    tls.key ? readPem('--tls-key', tls.key) : null,
    tls.cert ? readPem('--tls-cert', tls.cert) : null,
  );
}

export function askServer(address: string, request: WireCheckRequest, tls: RemoteTls = {}): Promise<WireCheckResponse> {
  const Client = authorizationService();
  const client = new Client(address, remoteCredentials(tls));
  return new Promise<WireCheckResponse>((resolve, reject) => {
    client.Check(
      request,
      { deadline: Date.now() + REMOTE_CHECK_DEADLINE_MS },
      (err: grpc.ServiceError | null, res: WireCheckResponse) =>
        err ? reject(new Error(`${address}: ${describeCallError(err)}`)) : resolve(res),
    );
  }).finally(() => client.close());
}

/** grpc-js's connection errors run over several lines with OpenSSL internals; one line, with the likely fix. */
function describeCallError(err: grpc.ServiceError): string {
  const text = (err.details || err.message)
    .replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)\.?\s*Resolution note:\s*$/s, '')
    .replace(/\s+/g, ' ')
    .trim();
  if (/certificate required/i.test(text))
    return 'the server requires a client certificate (give --tls-cert and --tls-key)';
  if (/wrong version number|packet length too long/i.test(text))
    return 'the server does not speak TLS (leave out the --tls flags)';
  if (/unable to verify|self.signed|certificate verify failed/i.test(text))
    return `the server certificate is not signed by a trusted CA (--tls-ca): ${text}`;
  return text;
}

let statusNumbers: Map<string, number> | undefined;

/**
 * The loader decodes enums as names (enums: String), so a denied response's
 * HTTP status arrives as "Forbidden"; the proto's own enum maps it back.
 */
export function httpStatusNumber(code: number | string | undefined): number | undefined {
  if (typeof code === 'number' || code === undefined) return code;
  if (!statusNumbers) {
    type EnumNode = { type: { value: { name: string; number: number }[] } };
    const e = (loadProtos().envoy as unknown as { type: { v3: { StatusCode: EnumNode } } }).type.v3.StatusCode;
    statusNumbers = new Map(e.type.value.map((v) => [v.name, v.number]));
  }
  return statusNumbers.get(code) ?? (/^\d+$/.test(code) ? Number(code) : undefined);
}

export interface RemoteAnswer {
  allowed: boolean;
  /** Reason code (allowed, policy_forbid, no_permit, ...); "" from a server too old to send it. */
  reason: string;
  httpStatus: number;
  message: string;
  policies: string[];
  version: string;
  decisionId: string;
  /** What Envoy was told, as the `decision` label of authz_decisions_total: allow, deny, dry_run_allow or fail_open. */
  outcome: string;
}

/** A line saying why an allow is not the policies' allow (dry-run, fail open); none otherwise. */
export function outcomeNote(a: RemoteAnswer): string[] {
  if (a.outcome === 'dry_run_allow') return [`answered:   allow in dry-run: the rules deny this (${a.reason})`];
  if (a.outcome === 'fail_open')
    return [`answered:   allow by the route's fail mode open: no decision could be made (${a.reason})`];
  return [];
}

/** What a CheckResponse says, in our terms (the deny body carries message and policies). */
export function readCheckResponse(res: WireCheckResponse): RemoteAnswer {
  const meta = res.dynamic_metadata?.fields ?? {};
  const str = (k: string): string => meta[k]?.stringValue ?? '';
  const allowed = res.status.code === 0;
  let body: { message?: string; policies?: string[] } = {};
  try {
    body = res.denied_response?.body ? JSON.parse(res.denied_response.body) : {};
  } catch {
    body = { message: res.denied_response?.body };
  }
  return {
    allowed,
    reason: str('reason'),
    httpStatus: allowed
      ? 200
      : (httpStatusNumber(res.denied_response?.status.code as number | string | undefined) ?? 403),
    message: allowed ? 'allowed' : (body.message ?? res.status.message ?? ''),
    policies: body.policies ?? (str('policies') ? str('policies').split(',') : []),
    version: str('policy_version'),
    decisionId: str('decision_id'),
    outcome: str('decision'),
  };
}
