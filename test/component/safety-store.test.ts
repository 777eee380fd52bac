/**
 * The operator's controls through a real S3 protocol server (s3rver) and a
 * real server polling it: lockdown on/off with reads unaffected, mode set
 * tightening rate limits, a shadow version's disagreements counted, and the
 * audit trail every change writes. The CLI commands run in-process.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simpleRequestToCheckRequest } from '../../src/envoy/simple-request.js';
import type { WireCheckResponse } from '../../src/envoy/wire-types.js';
import { runCli } from '../support/cli.js';
import { connectAuthz, denyBody, headerOf, type AuthzClient } from '../support/grpc-client.js';
import { eventually } from '../support/wait.js';
import { EXAMPLE_POLICIES } from '../support/policy-dir.js';
import { startTestStore, type TestStore } from '../support/s3-store.js';
import { metricValue } from '../support/admin-http.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
const SCHEMA = readFileSync(path.join(EXAMPLE_POLICIES, 'schema.cedarschema'), 'utf8');
const POLICIES = `
@id("reads") permit(principal, action in Action::"read", resource);
@id("frontend-writes") permit(principal == Workload::"${FRONTEND}", action in Action::"write", resource);
@id("signup") permit(principal, action == Action::"POST", resource) when { context.path == "/signup" };
@id("high-alert-no-signup") @status("503") @message("sign-ups are paused")
forbid(principal is Anonymous, action, resource) when { context.mode == "high-alert" && context.path == "/signup" };
`;
// Tiny rates keep the counts independent of how fast the test runs.
const BUNDLE_YAML = `# rate limits for callers without a mesh identity
mode: normal
rateLimits:
  - name: anonymous-per-ip
    match: { principalType: Anonymous }
    key: source.ip
    normal: { requestsPerSecond: 0.01, burst: 5 }
    high-alert: { requestsPerSecond: 0.002, burst: 1 }
services:
  orders: { identities: [spiffe://cluster.local/ns/shop/sa/orders] }
  payments: { identities: [spiffe://cluster.local/ns/shop/sa/payments] }
`;
const V1 = { 'main.cedar': POLICIES, 'schema.cedarschema': SCHEMA, 'bundle.yaml': BUNDLE_YAML };
// The candidate: the frontend may no longer write.
const V2 = { ...V1, 'main.cedar': POLICIES.replace('action in Action::"write"', 'action == Action::"PATCH"') };

let s3: TestStore;
let server: TestServer;
let client: AuthzClient;
const cli = (...argv: string[]) => runCli([...argv, ...s3.flags, '--actor', 'alice']);
const store = (...argv: string[]) => runCli([...argv, ...s3.flags]);

beforeAll(async () => {
  s3 = await startTestStore();
  await s3.publish(V1, 'v1');
  server = await startTestServer({ ...s3.serverFlags });
  client = connectAuthz(server.grpcPort);
});
afterAll(async () => {
  client?.close();
  await server?.close();
  await s3?.close();
});

const call = (o: { method?: string; path?: string; host?: string; principal?: string; ip?: string }) =>
  client.check(
    simpleRequestToCheckRequest({
      method: o.method ?? 'GET',
      path: o.path ?? '/',
      host: o.host ?? 'orders',
      principal: o.principal,
      sourceIp: o.ip,
    }),
  );
const write = (host = 'orders') => call({ method: 'POST', path: '/orders', host, principal: FRONTEND });
const read = () => call({ path: '/orders/1', principal: FRONTEND });
const active = () => server.policySet.current!.version;
/** Wait for the fleet (one server here) to follow the store; on a timeout, say what the server saw. */
async function converge<T>(cond: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  try {
    return await eventually(cond, 15_000);
  } catch (err) {
    const log = server
      .logLines()
      .filter((l) => l.msg !== 'decision')
      .slice(-10);
    throw new Error(
      `${(err as Error).message}\n/bundle: ${(await server.admin('/bundle')).body}\nlog:\n${log.map((l) => JSON.stringify(l)).join('\n')}`,
    );
  }
}
const codes = async (ip: string, n: number) => {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await call({ host: 'frontend', ip })).status.code);
  return out;
};

describe('lockdown through the store', () => {
  it('lockdown on: writes to the service get 503 with Retry-After on the running server; reads keep flowing', async () => {
    expect((await write()).status.code).toBe(0);
    const r = await cli(
      'lockdown',
      'on',
      '--service',
      'orders',
      '--message',
      'orders is migrating',
      '--retry-after',
      '120',
      '--reason',
      'db migration',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^lockdown on orders: POST, PUT, PATCH, DELETE answer 503 "orders is migrating" \(Retry-After 120\)/,
    );
    expect(r.stdout).toMatch(
      /published shop v1--lockdown-orders-\d{14} \(derived from v1, 5 policies\) and activated it/,
    );
    let locked: WireCheckResponse | undefined;
    const reads: number[] = [];
    await converge(async () => {
      reads.push((await read()).status.code);
      const res = await write();
      if (res.status.code === 7) locked = res;
      return locked;
    });
    // Every read sent while the lockdown rolled out was allowed.
    expect(reads.length).toBeGreaterThan(0);
    expect(reads.filter((c) => c !== 0)).toEqual([]);
    expect((await read()).status.code).toBe(0);
    expect(locked!.denied_response!.status.code).toBe(503);
    expect(headerOf(locked!, 'retry-after')).toBe('120');
    expect(denyBody(locked!)).toMatchObject({ message: 'orders is migrating', policies: ['lockdown-orders'] });
    expect((await write('payments')).status.code).toBe(0);
    // Every way of writing the service's name resolves to Service::"orders", so none escapes the lockdown.
    for (const host of ['orders.shop.svc.cluster.local:8080', 'orders.shop', 'orders.', 'ORDERS.shop.svc']) {
      expect((await write(host)).denied_response?.status.code, host).toBe(503);
    }
  });

  it('lockdown status lists it, with who and why', async () => {
    const r = await store('lockdown', 'status');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^shop v1--lockdown-orders-\d{14} \(mode normal, active since /);
    expect(r.stdout).toMatch(
      /locked down: orders {2}POST,PUT,PATCH,DELETE -> 503 "orders is migrating" \(Retry-After 120\) {2}since \S+ by alice: db migration/,
    );
  });

  it('a lockdown the servers would refuse is refused before anything is published', async () => {
    const before = active();
    const r = await cli('lockdown', 'on', '--service', 'payments', '--methods', 'POST,FROB');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^authz lockdown on: policies do not validate against schema\.cedarschema: lockdowns\/payments\.cedar:\d+:\d+: for policy `lockdown-payments`, unrecognized action `Action::"FROB"` \(did you mean `Action::"[A-Z]+"`\?\)\n$/,
    );
    expect((await s3.store.listVersions()).filter((v) => v.version.includes('lockdown-payments'))).toEqual([]);
    const pointer = await s3.store.getPointer();
    expect(pointer.kind === 'found' ? pointer.pointer.version : null).toBe(before);
    expect((await cli('lockdown', 'on', '--service', 'orders; drop')).code).toBe(1);
    // A name nothing in the bundle knows would lock nothing: refused, nothing published.
    const unknown = await cli('lockdown', 'on', '--service', 'paymnets');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(
      /^authz lockdown on: no policy, entity or services: entry in \S+ knows Service::"paymnets".*pass --force to publish it anyway\n$/,
    );
    expect((await s3.store.listVersions()).filter((v) => v.version.includes('paymnets'))).toEqual([]);
  });

  it('lockdown off: writes flow again; lifting it twice changes nothing', async () => {
    const r = await cli('lockdown', 'off', '--service', 'orders', '--reason', 'migration done');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^lockdown lifted on orders\npublished shop v1--unlock-orders-\d{14}/);
    await converge(async () => (await write()).status.code === 0);
    expect((await store('lockdown', 'status')).stdout).toMatch(/no service is locked down/);
    const again = await cli('lockdown', 'off', '--service', 'orders');
    expect(again).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/orders is not locked down in the active version .*; nothing changed/),
    });
  });
});

describe('mode set through the store', () => {
  it('high-alert tightens rate limits on the running server, for clients already counted too', async () => {
    expect(await codes('203.0.113.7', 2)).toEqual([0, 0]);
    const r = await cli('mode', 'set', 'high-alert', '--reason', 'flood');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^mode normal -> high-alert\nrate limits now: anonymous-per-ip 0.002\/s burst 1 \(were anonymous-per-ip 0.01\/s burst 5\)\n/,
    );
    await converge(() => server.policySet.current?.settings.mode === 'high-alert');
    // 203.0.113.7 had 3 of its 5 left; the new burst caps it at 1.
    expect(await codes('203.0.113.7', 2)).toEqual([0, 7]);
    const limited = await call({ host: 'frontend', ip: '203.0.113.7' });
    expect(limited.denied_response!.status.code).toBe(429);
    expect(headerOf(limited, 'x-ratelimit-limit')).toBe('0.002');
    // One token at 0.002/s: about 500 s, less whatever trickled in since the last request.
    expect(Number(headerOf(limited, 'retry-after'))).toBeGreaterThan(450);
    expect(Number(headerOf(limited, 'retry-after'))).toBeLessThanOrEqual(500);
    expect(denyBody(await call({ method: 'POST', path: '/signup', host: 'frontend', ip: '203.0.113.8' })).message).toBe(
      'sign-ups are paused',
    );
  });

  it('normal undoes it; setting the mode it already has changes nothing', async () => {
    expect((await cli('mode', 'set', 'high-alert')).stdout).toMatch(/is already in high-alert mode; nothing changed/);
    expect((await cli('mode', 'set', 'normal', '--reason', 'flood over')).code).toBe(0);
    await converge(() => server.policySet.current?.settings.mode === 'normal');
    expect(await codes('203.0.113.9', 6)).toEqual([0, 0, 0, 0, 0, 7]);
    expect((await cli('mode', 'set', 'panic')).code).toBe(2);
  });
});

describe('shadow version through the store', () => {
  it('every server loads it and counts its disagreements, enforcing only the active version', async () => {
    await s3.push(V2, 'v2');
    const r = await cli('bundle', 'shadow', 'v2', '--reason', 'trial: read-only frontend');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^shadowing v2 \(4 policies\) beside the active v1--normal-\d{14}/);
    await converge(() => server.shadowVersion.current?.version === 'v2');
    const res = await write();
    expect(res.status.code).toBe(0);
    await read();
    const sample = 'authz_shadow_mismatches_total{source="version",version="v2"}';
    await converge(async () => metricValue(await server.metricsText(), sample) === 1);
    const line = server
      .logLines()
      .find((l) => l.decision_id === res.dynamic_metadata!.fields!.decision_id.stringValue)!;
    expect(line.shadow).toEqual([{ source: 'version', version: 'v2', decision: 'deny', policies: [] }]);
    expect(
      metricValue(await server.metricsText(), 'authz_shadow_evaluations_total{source="version",result="match"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(JSON.parse((await server.admin('/bundle')).body).shadow).toMatchObject({ version: 'v2', last_error: null });
  });

  it('refuses what cannot be compared: a missing version, the active version', async () => {
    expect(await cli('bundle', 'shadow', 'v9')).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/version v9 does not exist/),
    });
    expect(await cli('bundle', 'shadow', active())).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/is the active version/),
    });
  });

  it('--clear stops it on every server', async () => {
    expect((await cli('bundle', 'shadow', '--clear', '--reason', 'v2 breaks checkout')).stdout).toMatch(
      /^stopped shadowing v2;/,
    );
    await converge(() => server.shadowVersion.current === null);
    expect((await cli('bundle', 'shadow', '--clear')).stdout).toMatch(/no shadow version is set/);
  });
});

describe('audit trail', () => {
  it('activate and rollback write records too, and activating ends a shadow trial', async () => {
    expect((await cli('bundle', 'shadow', 'v2')).code).toBe(0);
    await converge(() => server.shadowVersion.current?.version === 'v2');
    expect((await cli('bundle', 'activate', 'v2', '--reason', 'promote')).code).toBe(0);
    await converge(() => active() === 'v2' && server.shadowVersion.current === null);
    expect((await cli('bundle', 'rollback', '--reason', 'checkout broke')).code).toBe(0);
  });

  it('bundle history lists every change, newest first, with from, to, who and why', async () => {
    const r = await store('bundle', 'history', '--json');
    expect(r.code).toBe(0);
    const records = JSON.parse(r.stdout) as {
      action: string;
      from: string | null;
      to: string | null;
      who: string;
      why: string | null;
    }[];
    expect(records.map((x) => x.action)).toEqual([
      'rollback',
      'activate',
      'shadow',
      'shadow-clear',
      'shadow',
      'mode',
      'mode',
      'lockdown-off',
      'lockdown-on',
    ]);
    expect(records.every((x) => x.who === 'alice')).toBe(true);
    expect(records[0]).toMatchObject({ from: 'v2', why: 'checkout broke' });
    expect(records[0].to).toMatch(/^v1--normal-/);
    expect(records.at(-1)).toMatchObject({ action: 'lockdown-on', from: 'v1', why: 'db migration' });
    expect(records.at(-1)!.to).toMatch(/^v1--lockdown-orders-/);
    const table = await store('bundle', 'history', '--limit', '2');
    expect(table.stdout.split('\n')[0]).toMatch(/^TIME +ACTION +FROM +TO +WHO +WHY$/);
    expect(table.stdout.trim().split('\n')).toHaveLength(3);
    expect(table.stdout).toMatch(/rollback +v2 +v1--normal-\d{14} +alice +checkout broke/);
  });
});

// Last: these add versions and history records the tests above count.
describe('lockdown names', () => {
  it('lockdown on resolves the name as requests are; --force publishes a service nothing knows', async () => {
    const before = active();
    const longForm = await cli(
      'lockdown',
      'on',
      '--service',
      'payments.shop.svc.cluster.local:8080',
      '--methods',
      'DELETE',
    );
    expect(longForm.code).toBe(0);
    expect(longForm.stdout).toMatch(
      /^"payments.shop.svc.cluster.local:8080" names Service::"payments"\nlockdown on payments: DELETE answer 503/,
    );
    await converge(() => active() !== before);
    const forced = await cli('lockdown', 'on', '--service', 'paymnets', '--force');
    expect(forced.code).toBe(0);
    expect(forced.stderr).toMatch(/^warning: no policy, entity or services: entry .* publishing anyway \(--force\)\n$/);
    for (const service of ['payments.', 'paymnets'])
      expect((await cli('lockdown', 'off', '--service', service)).code).toBe(0);
  });
});
