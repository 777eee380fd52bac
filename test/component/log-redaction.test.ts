/**
 * Secrets never reach a decision line, an admin page or the start-up log:
 * every built-in credential header, every header the server is configured to
 * trust (upstream JWT payload, risk score), headers added by config, secret
 * query parameters in URL-valued headers, and user info in the S3 endpoint.
 * Long strings are cut. The whole log file is searched, not one field.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_REDACTED_HEADERS, MAX_LOGGED_HEADERS } from '../../src/observability/redaction.js';
import { connectAuthz, type AuthzClient } from '../support/grpc-client.js';
import { copyExamplePolicies, removeDir } from '../support/policy-dir.js';
import { FRONTEND, istioRequest } from '../support/requests.js';
import { startTestServer, type TestServer } from '../support/start-server.js';
import { TEST_BUCKET, TestS3Store } from '../support/s3rver-store.js';

const UPSTREAM_JWT_HEADER = 'x-jwt-payload';
const RISK_HEADER = 'x-risk-score';
const EXTRA_HEADER = 'x-internal-secret';
const MAX_STRING = 256;

/** A value no log line may contain: unique per header so a leak names its source. */
const secret = (what: string) => `SECRET-${what}-7f3a9c`;

describe('decision lines', () => {
  let dir: string;
  let server: TestServer;
  let client: AuthzClient;

  beforeAll(async () => {
    dir = copyExamplePolicies();
    server = await startTestServer({
      policies: dir,
      jwtUpstreamMetadata: true,
      jwtUpstreamHeader: UPSTREAM_JWT_HEADER,
      jwtUpstreamTrustedPrincipal: [FRONTEND],
      jwtUpstreamIssuers: ['https://issuer.example'],
      riskHeader: RISK_HEADER,
      riskTrustedPrincipal: [FRONTEND],
      decisionLogRedactHeaders: [EXTRA_HEADER],
      decisionLogMaxString: MAX_STRING,
    });
    client = connectAuthz(server.grpcPort);
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
    removeDir(dir);
  });

  const lineFor = async (req: Parameters<AuthzClient['check']>[0]) => {
    const res = await client.check(req);
    const id = res.dynamic_metadata!.fields!.decision_id.stringValue;
    const lines = server.logLines().filter((l) => l.decision_id === id);
    expect(lines).toHaveLength(1);
    return lines[0]!;
  };

  it('redacts every listed credential header, the trusted headers and the configured ones', async () => {
    const names = [...DEFAULT_REDACTED_HEADERS, UPSTREAM_JWT_HEADER, RISK_HEADER, EXTRA_HEADER];
    expect(names).toEqual(
      expect.arrayContaining([
        'authorization',
        'proxy-authorization',
        'cookie',
        'set-cookie',
        'x-api-key',
        'x-auth-token',
        'x-amz-security-token',
        'x-csrf-token',
        'x-forwarded-client-cert',
      ]),
    );
    const headers: Record<string, string> = { 'x-visible': 'yes' };
    for (const n of names) headers[n] = n === RISK_HEADER ? '17' : secret(n);
    // Header names arrive in any case; Envoy lower-cases them, and so do we.
    const line = await lineFor(
      istioRequest({ principal: FRONTEND, path: '/orders/5', headers, ext: { service: 'orders' } }),
    );
    const logged = line.headers as Record<string, string>;
    for (const n of names) expect(logged[n], n).toBe('[redacted]');
    expect(logged['x-visible']).toBe('yes');
    const text = readFileSync(server.logFile, 'utf8');
    expect(text).not.toMatch(/SECRET-/);
  });

  it('redacts secret-named query parameters in URL-valued headers and keeps the rest', async () => {
    const line = await lineFor(
      istioRequest({
        principal: FRONTEND,
        path: '/orders/5',
        headers: {
          referer: `https://shop.example/cb?page=2&access_token=${secret('q1')}&api_key=${secret('q2')}#top`,
          'x-envoy-original-path': `/login?user=ann&password=${secret('q3')}&X-Amz-Signature=${secret('q4')}`,
        },
        ext: { service: 'orders' },
      }),
    );
    const logged = line.headers as Record<string, string>;
    expect(logged.referer).toBe('https://shop.example/cb?page=2&access_token=[redacted]&api_key=[redacted]#top');
    expect(logged['x-envoy-original-path']).toBe('/login?user=ann&password=[redacted]&X-Amz-Signature=[redacted]');
    expect(readFileSync(server.logFile, 'utf8')).not.toMatch(/SECRET-/);
  });

  it('cuts long strings at the configured length and logs a bounded number of headers', async () => {
    const longPath = `/orders/${'a'.repeat(100_000)}`;
    const headers: Record<string, string> = { 'x-long': 'b'.repeat(50_000) };
    for (let i = 0; i < 200; i++) headers[`x-h${String(i).padStart(3, '0')}`] = String(i);
    const line = await lineFor(
      istioRequest({ principal: FRONTEND, path: longPath, headers, ext: { service: 'orders' } }),
    );
    expect(line.path).toBe(`${longPath.slice(0, MAX_STRING)}…[cut ${longPath.length - MAX_STRING} chars]`);
    const logged = line.headers as Record<string, string | number>;
    expect(Object.keys(logged)).toHaveLength(MAX_LOGGED_HEADERS + 1);
    expect(logged['…']).toBeGreaterThan(0);
    const lines = readFileSync(server.logFile, 'utf8').split('\n');
    const raw = lines.find((l) => l.includes(line.decision_id as string))!;
    // 64 headers of at most 256 characters, plus the fixed fields: far below the 150 KB the request carried.
    expect(raw.length).toBeLessThan(MAX_LOGGED_HEADERS * (MAX_STRING * 2) + 4 * MAX_STRING);
  });
});

describe('the S3 endpoint with user info', () => {
  let s3: TestS3Store;
  let server: TestServer;
  const password = 'hunter2-s3-password';

  beforeAll(async () => {
    s3 = await TestS3Store.start();
    const withCredentials = s3.endpoint.replace('http://', `http://ops:${password}@`);
    server = await startTestServer({
      s3Endpoint: withCredentials,
      bucket: TEST_BUCKET,
      bundle: 'creds',
      pollInterval: '200ms',
    });
  });
  afterAll(async () => {
    await server?.close();
    await s3?.close();
  });

  it('is shown without its credentials on /bundle and /safety and in the logs', async () => {
    const bundle = await server.admin('/bundle');
    expect(bundle.status).toBe(200);
    expect(JSON.parse(bundle.body).source.endpoint).toBe(`${s3.endpoint}/`);
    const safety = await server.admin('/safety');
    for (const page of [bundle.body, safety.body, readFileSync(server.logFile, 'utf8')]) {
      expect(page).not.toContain(password);
      expect(page).not.toContain('ops:');
    }
    expect(readFileSync(server.logFile, 'utf8')).toMatch(/authz server listening/);
  });
});
