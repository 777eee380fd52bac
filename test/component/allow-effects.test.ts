/**
 * Allow effects through the real server: a grpc-js client reads the exact
 * OkHttpResponse fields and dynamic metadata Envoy would act on.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAuthz, type AuthzClient } from '../support/grpc-client.js';
import { eventually } from '../support/wait.js';
import { policyDir, removeDir } from '../support/policy-dir.js';
import { FRONTEND, ORDERS, istioRequest } from '../support/requests.js';
import { metricValue } from '../support/admin-http.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

const SANITIZE = `
@id("orders-read")
@strip_headers("cookie")
@set_headers("x-user-id: {principal.id}; x-tenant: {context.headers.x-tenant-hint}")
@strip_query("access_token")
@response_headers("cache-control: no-store")
permit (principal is Workload, action in Action::"read", resource == Service::"orders");

@id("orders-namespace")
@set_headers("x-user-id: {principal.namespace}; x-namespace: {principal.namespace}")
permit (principal is Workload, action in Action::"read", resource == Service::"orders") when { context.path like "/orders/*" };

@id("public")
permit (principal, action in Action::"read", resource == Service::"public");
`;

const BUNDLE_YAML = `
allowEffects:
  - name: anonymous-no-internal
    principalType: Anonymous
    stripHeaders: [x-internal-*]
  - name: decision-id
    responseHeaders: { x-decision-id: "{decision.id}" }
`;

/** What our answer's HeaderValueOption looks like on the wire (enums as numbers: 2 is OVERWRITE_IF_EXISTS_OR_ADD). */
const overwrite = (key: string, value: string) => ({
  header: { key, value },
  append: { value: false },
  append_action: 2,
});

let server: TestServer;
let client: AuthzClient;
let dir: string;

beforeAll(async () => {
  dir = policyDir({ 'sanitize.cedar': SANITIZE, 'bundle.yaml': BUNDLE_YAML });
  server = await startTestServer({ policies: dir });
  client = connectAuthz(server.grpcPort);
});

afterAll(async () => {
  client?.close();
  await server?.close();
  removeDir(dir);
});

const decisionLine = (decisionId: string) => server.logLines().find((l) => l.decision_id === decisionId)!;

describe('an allow with effects', () => {
  it('strips the cookie, passes the caller id, drops access_token and adds cache-control: the exact OkHttpResponse', async () => {
    const res = await client.check(
      istioRequest({
        principal: FRONTEND,
        path: '/orders?access_token=secret-token',
        headers: { cookie: 'session=secret-cookie', 'x-tenant-hint': 'acme' },
        ext: { service: 'orders' },
      }),
    );
    expect(res.status.code).toBe(0);
    const decisionId = res.dynamic_metadata!.fields!.decision_id.stringValue!;
    expect(res.ok_response).toEqual({
      headers: [overwrite('x-user-id', FRONTEND), overwrite('x-tenant', 'acme')],
      headers_to_remove: ['cookie'],
      query_parameters_to_remove: ['access_token'],
      response_headers_to_add: [overwrite('x-decision-id', decisionId), overwrite('cache-control', 'no-store')],
    });
    expect(res.dynamic_metadata).toEqual({
      fields: {
        decision_id: { stringValue: decisionId },
        policy_version: { stringValue: expect.stringMatching(/^dir-/) },
        decision: { stringValue: 'allow' },
        reason: { stringValue: 'allowed' },
        policies: { stringValue: 'orders-read' },
        principal_type: { stringValue: 'Workload' },
        principal_id: { stringValue: FRONTEND },
        mode: { stringValue: 'normal' },
      },
    });
  });

  it('merges two determining permits in policy order: the first sets x-user-id, the conflict is logged by name', async () => {
    const res = await client.check(
      istioRequest({ principal: FRONTEND, path: '/orders/17', ext: { service: 'orders' } }),
    );
    const decisionId = res.dynamic_metadata!.fields!.decision_id.stringValue!;
    expect(res.ok_response).toEqual({
      headers: [overwrite('x-user-id', FRONTEND), overwrite('x-namespace', 'shop')],
      // x-tenant-hint was not sent: its header is left out and removed, so a client cannot supply it.
      headers_to_remove: ['cookie', 'x-tenant'],
      query_parameters_to_remove: ['access_token'],
      response_headers_to_add: [overwrite('x-decision-id', decisionId), overwrite('cache-control', 'no-store')],
    });
    expect(res.dynamic_metadata!.fields!.policies.stringValue).toBe('orders-read,orders-namespace');
    expect(decisionLine(decisionId).effects).toEqual({
      headers_set: ['x-user-id', 'x-namespace'],
      headers_removed: ['cookie', 'x-tenant'],
      query_removed: ['access_token'],
      response_headers: ['x-decision-id', 'cache-control'],
      conflicts: [{ header: 'x-user-id', kept: 'orders-read', dropped: 'orders-namespace' }],
      skipped: [{ header: 'x-tenant', reason: 'context.headers.x-tenant-hint is absent' }],
    });
  });

  it('the decision log names the headers and parameters touched, never their values', async () => {
    const res = await client.check(
      istioRequest({
        principal: FRONTEND,
        path: '/orders?access_token=secret-token',
        headers: { cookie: 'session=secret-cookie', 'x-tenant-hint': 'tenant-value' },
        ext: { service: 'orders' },
      }),
    );
    const line = decisionLine(res.dynamic_metadata!.fields!.decision_id.stringValue!);
    expect(line.effects).toMatchObject({
      headers_set: ['x-user-id', 'x-tenant'],
      headers_removed: ['cookie'],
      query_removed: ['access_token'],
    });
    // The request's own headers are logged as before (credentials redacted); the effects add names only.
    for (const value of ['secret-token', 'secret-cookie']) expect(JSON.stringify(line)).not.toContain(value);
    for (const value of ['tenant-value', FRONTEND, 'no-store'])
      expect(JSON.stringify(line.effects)).not.toContain(value);
  });

  it('a bundle-wide rule applies by principal type, before any policy effect', async () => {
    const anonymous = await client.check(
      istioRequest({
        path: '/index.html',
        headers: { 'x-internal-debug': '1', 'x-internal-route': 'b' },
        ext: { service: 'public' },
      }),
    );
    const decisionId = anonymous.dynamic_metadata!.fields!.decision_id.stringValue!;
    expect(anonymous.ok_response).toEqual({
      headers_to_remove: ['x-internal-debug', 'x-internal-route'],
      response_headers_to_add: [overwrite('x-decision-id', decisionId)],
    });
    expect(anonymous.dynamic_metadata!.fields!.principal_type.stringValue).toBe('Anonymous');
    const workload = await client.check(
      istioRequest({
        principal: ORDERS,
        path: '/index.html',
        headers: { 'x-internal-debug': '1' },
        ext: { service: 'public' },
      }),
    );
    expect(workload.ok_response!.headers_to_remove).toBeUndefined();
  });

  it('a deny carries no effects, but its metadata still names the principal', async () => {
    const res = await client.check(
      istioRequest({
        principal: FRONTEND,
        method: 'POST',
        path: '/orders',
        headers: { cookie: 'c' },
        ext: { service: 'orders' },
      }),
    );
    expect(res.status.code).toBe(7);
    expect(res.ok_response).toBeUndefined();
    expect(res.dynamic_metadata!.fields).toMatchObject({
      decision: { stringValue: 'deny' },
      reason: { stringValue: 'no_permit' },
      principal_id: { stringValue: FRONTEND },
    });
  });
});

describe('effects and the decision cache', () => {
  const lookups = async (result: string) =>
    metricValue(await server.metricsText(), `authz_decision_cache_lookups_total{result="${result}"}`);

  it('a cached decision renders the effects of this request, never the stored request', async () => {
    const read = (principal: string, tenant: string) =>
      client.check(
        istioRequest({ principal, path: '/orders', headers: { 'x-tenant-hint': tenant }, ext: { service: 'orders' } }),
      );
    const headerValues = (res: Awaited<ReturnType<typeof read>>) =>
      Object.fromEntries(res.ok_response!.headers!.map((h) => [h.header.key, h.header.value]));

    await read(FRONTEND, 'first');
    const hitsBefore = await lookups('hit');
    // No policy reads x-tenant-hint, so this is the same cache entry with another tenant.
    const again = await read(FRONTEND, 'second');
    expect(await lookups('hit')).toBe(hitsBefore + 1);
    expect(decisionLine(again.dynamic_metadata!.fields!.decision_id.stringValue!).cached).toBe(true);
    expect(headerValues(again)).toEqual({ 'x-user-id': FRONTEND, 'x-tenant': 'second' });

    // Another caller: its own id, whatever was cached before.
    const other = await read(ORDERS, 'third');
    expect(headerValues(other)).toEqual({ 'x-user-id': ORDERS, 'x-tenant': 'third' });
    const otherAgain = await read(ORDERS, 'third');
    expect(decisionLine(otherAgain.dynamic_metadata!.fields!.decision_id.stringValue!).cached).toBe(true);
    expect(headerValues(otherAgain)['x-user-id']).toBe(ORDERS);
    expect(headerValues(await read(FRONTEND, 'first'))['x-user-id']).toBe(FRONTEND);
  });
});

describe('a bad template', () => {
  it('refuses the set with its file and line; the last good set keeps answering', async () => {
    writeFileSync(
      path.join(dir, 'broken.cedar'),
      '@id("broken")\n@set_headers("x-user-id: {principal.id")\npermit (principal, action, resource);\n',
    );
    const bundle = await eventually(async () => {
      const b = JSON.parse((await server.admin('/bundle')).body);
      return b.last_error ? b : undefined;
    }, 5000);
    expect(JSON.stringify(bundle.last_error)).toContain(
      'broken.cedar:2 (policy #0): @set_headers: x-user-id: \\"{principal.id\\" has a { that is never closed',
    );
    const res = await client.check(istioRequest({ principal: FRONTEND, path: '/orders', ext: { service: 'orders' } }));
    expect(res.ok_response!.headers_to_remove).toEqual(['cookie', 'x-tenant']);
  });
});
