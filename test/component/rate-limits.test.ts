/**
 * bundle.yaml rate limits and high-alert mode on a running server: switching
 * the mode in the active set tightens limits (and context.mode) with no restart.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simpleRequestToCheckRequest } from '../../src/envoy/simple-request.js';
import { connectAuthz, denyBody, headerOf, type AuthzClient } from '../support/grpc-client.js';
import { eventually } from '../support/wait.js';
import { policyDir, removeDir } from '../support/policy-dir.js';
import { metricValue } from '../support/admin-http.js';
import { startTestServer, type TestServer } from '../support/start-server.js';
import { AUDIENCE, ISSUER, signingKey, token } from './context-harness.js';

const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
const POLICIES = `
@id("reads") permit(principal, action in Action::"read", resource);
@id("signup") permit(principal, action == Action::"POST", resource) when { context.path == "/signup" };

// Policies see the mode too: no anonymous sign-ups while under attack.
@id("high-alert-no-signup") @status("503") @message("sign-ups are paused")
forbid(principal is Anonymous, action, resource) when { context.mode == "high-alert" && context.path == "/signup" };
`;
// Real rates would be e.g. 50/s burst 100 → 10/s burst 20; tiny rates keep this test independent of how fast it runs.
const bundleYaml = (mode: string) => `mode: ${mode}
rateLimits:
  - name: anonymous-per-ip
    match: { principalType: Anonymous }
    key: source.ip
    normal: { requestsPerSecond: 0.01, burst: 5 }
    high-alert: { requestsPerSecond: 0.002, burst: 1 }
`;

let dir: string;
let server: TestServer;
let client: AuthzClient;

beforeAll(async () => {
  dir = policyDir({ 'main.cedar': POLICIES, 'bundle.yaml': bundleYaml('normal') });
  server = await startTestServer({ policies: dir });
  client = connectAuthz(server.grpcPort);
});
afterAll(async () => {
  client?.close();
  await server?.close();
  removeDir(dir);
});

const anon = (ip: string, o: { method?: string; path?: string } = {}) =>
  client.check(
    simpleRequestToCheckRequest({ method: o.method ?? 'GET', path: o.path ?? '/', host: 'frontend', sourceIp: ip }),
  );
async function admitted(ip: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await anon(ip)).status.code);
  return out;
}
async function switchMode(mode: string): Promise<void> {
  writeFileSync(path.join(dir, 'bundle.yaml'), bundleYaml(mode));
  await eventually(() => server.policySet.current?.settings.mode === mode, 10_000);
}

describe('rate limits from bundle.yaml', () => {
  it('admits the burst per key, then answers 429 with retry-after and x-ratelimit-limit', async () => {
    expect(await admitted('203.0.113.1', 5)).toEqual([0, 0, 0, 0, 0]);
    const res = await anon('203.0.113.1');
    expect(res.denied_response!.status.code).toBe(429);
    // One token at 0.01/s: 100 s, less what trickled in while the burst was sent.
    expect(Number(headerOf(res, 'retry-after'))).toBeGreaterThan(90);
    expect(Number(headerOf(res, 'retry-after'))).toBeLessThanOrEqual(100);
    expect(headerOf(res, 'x-ratelimit-limit')).toBe('0.01');
    expect(denyBody(res).message).toBe(
      'rate limit "anonymous-per-ip" exceeded: 0.01 requests per second, burst 5 (normal mode)',
    );
    expect((await anon('203.0.113.2')).status.code).toBe(0);
  });

  it('only matching requests are limited: a workload is not Anonymous', async () => {
    for (let i = 0; i < 8; i++) {
      const res = await client.check(
        simpleRequestToCheckRequest({ path: '/', host: 'frontend', sourceIp: '203.0.113.1', principal: FRONTEND }),
      );
      expect(res.status.code).toBe(0);
    }
  });

  it('is counted per rule and logged with the rule', async () => {
    expect(metricValue(await server.metricsText(), 'authz_ratelimited_total{rule="anonymous-per-ip"}')).toBe(1);
    expect(
      metricValue(await server.metricsText(), 'authz_decisions_total{decision="deny",reason="rate_limited"}'),
    ).toBe(1);
    const line = server.logLines().find((l) => l.reason === 'rate_limited')!;
    expect(line).toMatchObject({ decision: 'deny', status: 429, rate_limit_rule: 'anonymous-per-ip' });
  });
});

describe('high-alert mode', () => {
  it('switching the active set to high-alert cuts the burst from 5 to 1 without a restart', async () => {
    expect((await anon('198.51.100.1', { method: 'POST', path: '/signup' })).status.code).toBe(0);
    await switchMode('high-alert');
    expect(await admitted('198.51.100.2', 2)).toEqual([0, 7]);
    // A key that already had tokens is capped at the new burst too.
    expect(await admitted('203.0.113.2', 2)).toEqual([0, 7]);
    expect(JSON.parse((await server.admin('/safety')).body)).toMatchObject({
      mode: 'high-alert',
      rate_limits: [{ name: 'anonymous-per-ip', requests_per_second: 0.002, burst: 1 }],
    });
  });

  it('policies read context.mode', async () => {
    const res = await anon('198.51.100.3', { method: 'POST', path: '/signup' });
    expect(res.denied_response!.status.code).toBe(503);
    expect(denyBody(res).message).toBe('sign-ups are paused');
  });

  it('switching back to normal restores the normal burst', async () => {
    await switchMode('normal');
    expect(await admitted('198.51.100.4', 6)).toEqual([0, 0, 0, 0, 0, 7]);
    expect((await anon('198.51.100.5', { method: 'POST', path: '/signup' })).status.code).toBe(0);
  });

  it('bucket memory is visible', async () => {
    expect(metricValue(await server.metricsText(), 'authz_ratelimit_keys')).toBeGreaterThanOrEqual(5);
  });
});

describe('rate limits and end-user identity', () => {
  // Verified bearer tokens make the caller a User before rate limits run, so a rule for Anonymous callers leaves them alone.
  it('a caller with a valid token is not Anonymous; one without is', async () => {
    const key = await signingKey('k1');
    const jwksDir = policyDir({ 'jwks.json': JSON.stringify({ keys: [key.publicJwk] }) });
    const jwtDir = policyDir({ 'main.cedar': POLICIES, 'bundle.yaml': bundleYaml('high-alert') });
    const s = await startTestServer({
      policies: jwtDir,
      jwtIssuer: ISSUER,
      jwtAudience: AUDIENCE,
      jwks: path.join(jwksDir, 'jwks.json'),
    });
    const c = connectAuthz(s.grpcPort);
    try {
      const bearer = `Bearer ${await token(key, { sub: 'alice' })}`;
      const ask = (headers: Record<string, string>) =>
        c.check(simpleRequestToCheckRequest({ path: '/', host: 'frontend', sourceIp: '192.0.2.50', headers }));
      expect([(await ask({})).status.code, (await ask({})).status.code]).toEqual([0, 7]);
      for (let i = 0; i < 3; i++) expect((await ask({ authorization: bearer })).status.code).toBe(0);
      const line = s
        .logLines()
        .filter((l) => l.reason === 'rate_limited')
        .at(-1)!;
      expect(line).toMatchObject({ principal: 'Anonymous::"anonymous"', rate_limit_rule: 'anonymous-per-ip' });
    } finally {
      c.close();
      await s.close();
      removeDir(jwksDir);
      removeDir(jwtDir);
    }
  });
});
