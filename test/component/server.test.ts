import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAuthz, denyBody, headerOf, type AuthzClient } from '../support/grpc-client.js';
import { copyExamplePolicies, removeDir } from '../support/policy-dir.js';
import { ADMIN_CONSOLE, FRONTEND, ORDERS, istioRequest, rawHeaderRequest } from '../support/requests.js';
import { metricValue } from '../support/admin-http.js';
import { startTestServer, type TestServer } from '../support/start-server.js';
import { TRANSPORTS } from '../../src/config/transport-schema.js';

// Both gRPC servers (--transport) serve the same handler; a grpc-js client sees the same answers from each.
describe.each(TRANSPORTS)('over the %s transport', (transport) => {
  let server: TestServer;
  let client: AuthzClient;
  let dir: string;

  beforeAll(async () => {
    dir = copyExamplePolicies();
    server = await startTestServer({ policies: dir, transport });
    client = connectAuthz(server.grpcPort);
  });

  afterAll(async () => {
    client?.close();
    await server?.close();
    removeDir(dir);
  });

  describe('Check over gRPC with the example mesh', () => {
    const rows = [
      {
        name: 'frontend may read orders (Istio sidecar shape)',
        req: istioRequest({ principal: FRONTEND, path: '/orders/17', ext: { service: 'orders' } }),
        allow: true,
        policies: ['orders-frontend-access'],
      },
      {
        name: 'frontend may create orders',
        req: istioRequest({ principal: FRONTEND, method: 'POST', path: '/orders', ext: { service: 'orders' } }),
        allow: true,
        policies: ['orders-frontend-access'],
      },
      {
        name: 'anonymous callers get 401 from orders',
        req: istioRequest({ path: '/orders/17', ext: { service: 'orders' } }),
        allow: false,
        status: 401,
        policies: ['orders-no-anonymous'],
      },
      {
        name: 'orders may charge payments',
        req: istioRequest({
          principal: ORDERS,
          method: 'POST',
          path: '/payments/charge',
          ext: { service: 'payments' },
        }),
        allow: true,
        policies: ['payments-orders-charge'],
      },
      {
        name: 'frontend may not charge payments',
        req: istioRequest({
          principal: FRONTEND,
          method: 'POST',
          path: '/payments/charge',
          ext: { service: 'payments' },
        }),
        allow: false,
        status: 403,
        policies: [],
      },
      {
        name: 'nobody deletes payments: 405 from the forbid',
        req: istioRequest({
          principal: ADMIN_CONSOLE,
          method: 'DELETE',
          path: '/payments/9',
          ext: { service: 'payments' },
        }),
        allow: false,
        status: 405,
        policies: ['payments-no-delete'],
      },
      {
        name: 'admins pass the admin API',
        req: istioRequest({ principal: ADMIN_CONSOLE, path: '/admin/flags', ext: { service: 'orders' } }),
        allow: true,
        policies: ['admins-full-access'],
      },
      {
        name: 'the admin API is closed to others',
        req: istioRequest({ principal: FRONTEND, path: '/admin/flags', ext: { service: 'frontend' } }),
        allow: false,
        status: 403,
        policies: ['admin-api-admins-only'],
      },
      {
        name: 'public paths need no caller identity (resource from the destination identity)',
        req: istioRequest({ path: '/public/logo.png', host: 'frontend:8080', destination: FRONTEND }),
        allow: true,
        policies: ['frontend-public-read', 'public-paths'],
      },
      {
        name: 'front proxy with header_map raw values',
        req: rawHeaderRequest({
          method: 'GET',
          path: '/public/app.js',
          host: 'shop.example.com',
          headers: { 'user-agent': 'Mozilla/5.0', cookie: 'session=secret' },
        }),
        allow: true,
        policies: ['public-paths'],
      },
    ];
    for (const row of rows) {
      it(row.name, async () => {
        const res = await client.check(row.req);
        if (row.allow) {
          expect(res.status.code).toBe(0);
          expect(res.ok_response).toBeDefined();
        } else {
          expect(res.status.code).toBe(7);
          expect(res.denied_response!.status.code).toBe(row.status);
          expect(headerOf(res, 'content-type')).toBe('application/json');
          expect(denyBody(res).policies).toEqual(row.policies);
        }
        const fields = res.dynamic_metadata!.fields!;
        expect(fields.decision_id.stringValue).toMatch(/^[0-9a-f-]{36}$/);
        expect(fields.policy_version.stringValue).toMatch(/^dir-/);
      });
    }

    it('a deny explains itself: message, policies and decision id in the JSON body', async () => {
      const res = await client.check(
        istioRequest({ principal: FRONTEND, method: 'DELETE', path: '/payments/1', ext: { service: 'payments' } }),
      );
      const body = denyBody(res);
      expect(body).toMatchObject({
        decision: 'deny',
        message: 'payments cannot be deleted; issue a refund instead',
        policies: ['payments-no-delete'],
      });
      expect(body.decision_id).toBe(res.dynamic_metadata!.fields!.decision_id.stringValue);
    });

    it('an empty CheckRequest is a 400 deny naming what is missing, not a gRPC error', async () => {
      const res = await client.check({});
      expect(res.status.code).toBe(7);
      expect(res.denied_response!.status.code).toBe(400);
      expect(denyBody(res).message).toBe('CheckRequest has no attributes');
    });

    it('a request with 300 headers is decided normally', async () => {
      const headers = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`x-extra-${i}`, 'v'.repeat(20)]));
      const res = await client.check(
        istioRequest({ principal: FRONTEND, path: '/orders/1', headers, ext: { service: 'orders' } }),
      );
      expect(res.status.code).toBe(0);
    });

    it('a request with 2000 headers is refused with 431', async () => {
      const headers = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`x-extra-${i}`, 'v']));
      const res = await client.check(
        istioRequest({ principal: FRONTEND, path: '/orders/1', headers, ext: { service: 'orders' } }),
      );
      expect(res.denied_response!.status.code).toBe(431);
    });

    it('a network (TCP) check maps to Action::"connect" and is denied without a policy', async () => {
      const res = await client.check({
        attributes: {
          source: { principal: FRONTEND },
          destination: { principal: 'spiffe://cluster.local/ns/db/sa/postgres' },
        },
      });
      expect(res.denied_response!.status.code).toBe(403);
      const line = server
        .logLines()
        .find((l) => l.decision_id === res.dynamic_metadata!.fields!.decision_id.stringValue)!;
      // The destination's mesh identity names the target by its service account.
      expect(line).toMatchObject({ action: 'Action::"connect"', resource: 'Service::"postgres"' });
    });
  });

  describe('health, readiness, metrics and the decision log', () => {
    it('gRPC health is SERVING for "" and the Authorization service, unknown otherwise', async () => {
      expect(await client.health('')).toBe('SERVING');
      expect(await client.health('envoy.service.auth.v3.Authorization')).toBe('SERVING');
      expect(await client.health('some.Other')).toBe('SERVICE_UNKNOWN');
    });

    it('admin endpoints answer', async () => {
      expect((await server.admin('/healthz')).status).toBe(200);
      const ready = await server.admin('/readyz');
      expect(ready.status).toBe(200);
      expect(JSON.parse(ready.body).version).toMatch(/^dir-/);
      const bundle = JSON.parse((await server.admin('/bundle')).body);
      expect(bundle).toMatchObject({ policies: 19, last_error: null });
    });

    it('metrics count decisions and time the handler', async () => {
      const before = metricValue(
        await server.metricsText(),
        'authz_decisions_total{decision="deny",reason="no_permit"}',
      );
      await client.check(
        istioRequest({ principal: FRONTEND, method: 'POST', path: '/payments/charge', ext: { service: 'payments' } }),
      );
      const text = await server.metricsText();
      expect(metricValue(text, 'authz_decisions_total{decision="deny",reason="no_permit"}')).toBe(before + 1);
      expect(text).toContain('authz_check_duration_seconds_bucket{le="0.0001"}');
      expect(text).toContain('authz_check_duration_seconds_bucket{le="0.00025"}');
      expect(metricValue(text, 'authz_bundle_loads_total{result="success"}')).toBe(1);
      expect(text).toMatch(/authz_bundle_info\{version="dir-[0-9a-f]{12}",engine="js"\} 1/);
    });

    it('writes one decision line per check with sensitive headers redacted', async () => {
      const res = await client.check(
        istioRequest({
          principal: FRONTEND,
          path: '/orders/5',
          headers: { authorization: 'Bearer abc', cookie: 'sid=1', 'x-api-key': 'k', 'x-visible': 'yes' },
          ext: { service: 'orders' },
        }),
      );
      const id = res.dynamic_metadata!.fields!.decision_id.stringValue;
      const lines = server.logLines().filter((l) => l.decision_id === id);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        msg: 'decision',
        decision: 'allow',
        status: 200,
        policies: ['orders-frontend-access'],
        principal: `Workload::"${FRONTEND}"`,
        action: 'Action::"GET"',
        resource: 'Service::"orders"',
        method: 'GET',
        path: '/orders/5',
        source_address: '10.244.1.17:43512',
        headers: { authorization: '[redacted]', cookie: '[redacted]', 'x-api-key': '[redacted]', 'x-visible': 'yes' },
      });
      expect(typeof lines[0].duration_ms).toBe('number');
      expect(lines[0].version).toMatch(/^dir-/);
      expect(lines[0]).not.toHaveProperty('client_address'); // no trusted hops configured: x-forwarded-for is not believed
    });

    it('with trusted hops, the decision line names the client address the proxies vouch for', async () => {
      const behindProxy = await startTestServer({ policies: dir, trustedHops: '1', transport });
      const viaProxy = await connectAuthz(behindProxy.grpcPort);
      try {
        const res = await viaProxy.check(
          istioRequest({
            principal: FRONTEND,
            path: '/orders/5',
            headers: { 'x-forwarded-for': '198.51.100.7, 203.0.113.9' },
            ext: { service: 'orders' },
          }),
        );
        const line = behindProxy
          .logLines()
          .find((l) => l.decision_id === res.dynamic_metadata!.fields!.decision_id.stringValue)!;
        expect(line).toMatchObject({ source_address: '10.244.1.17:43512', client_address: '203.0.113.9' });
      } finally {
        viaProxy.close();
        await behindProxy.close();
      }
    });
  });
});
