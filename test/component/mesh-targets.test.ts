/**
 * The target of a request comes from what the mesh vouches for: the real
 * server with the example mesh (policies/, its bundle.yaml `services:` map)
 * answering Istio-shaped CheckRequests over gRPC: a sidecar's check carries the
 * destination principal (the sidecar's own identity) and no
 * context_extensions, and the Host is whatever the caller wrote.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockdownPolicyText } from '../../src/operator/lockdown.js';
import type { WireCheckResponse } from '../../src/envoy/wire-types.js';
import { connectAuthz, denyBody, type AuthzClient } from '../support/grpc-client.js';
import { copyExamplePolicies, removeDir } from '../support/policy-dir.js';
import { ADMIN_CONSOLE, FRONTEND, ORDERS, istioRequest, rawHeaderRequest } from '../support/requests.js';
import { metricValue } from '../support/admin-http.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

const PAYMENTS = 'spiffe://cluster.local/ns/shop/sa/payments';
const GATEWAY = 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account';
/** The malformed id: the last `ns` used to win, making it namespace "shop". */
const SMUGGLED = 'spiffe://cluster.local/ns/untrusted/sa/x/ns/shop';

/** Extra policies for this test, next to the example mesh. */
const EXTRA = {
  // Only workloads of namespace shop may read inventory.
  'inventory.cedar': `
@id("inventory-shop-reads")
permit (principal is Workload, action == Action::"GET", resource == Service::"inventory")
when { principal has namespace && principal.namespace == "shop" };
`,
  // Risky writes are refused whoever makes them.
  'risky-writes.cedar': `
@id("risky-writes")
@message("risk too high")
forbid (principal, action in Action::"write", resource)
when { context has risk && context.risk > 80 };
`,
};

let dir: string;
let server: TestServer;
let client: AuthzClient;

beforeAll(async () => {
  dir = copyExamplePolicies();
  for (const [name, text] of Object.entries(EXTRA)) writeFileSync(path.join(dir, name), text);
  // orders is locked down: the file `authz lockdown on --service orders` publishes.
  mkdirSync(path.join(dir, 'lockdowns'));
  writeFileSync(
    path.join(dir, 'lockdowns', 'orders.cedar'),
    lockdownPolicyText({
      service: 'orders',
      methods: ['POST', 'PUT', 'PATCH', 'DELETE'],
      message: 'orders is in maintenance',
      retryAfterSeconds: 60,
      by: 'test',
      at: '2026-11-30T00:00:00Z',
      reason: null,
    }),
  );
  server = await startTestServer({ policies: dir, riskHeader: 'x-risk-score', riskTrustedPrincipal: [GATEWAY] });
  client = connectAuthz(server.grpcPort);
});

afterAll(async () => {
  client?.close();
  await server?.close();
  removeDir(dir);
});

const decisionLine = (res: WireCheckResponse) =>
  server.logLines().find((l) => l.decision_id === res.dynamic_metadata!.fields!.decision_id.stringValue)!;

describe('a sidecar check names its target by the destination identity', () => {
  it("the frontend reads orders through orders' sidecar", async () => {
    const res = await client.check(
      istioRequest({
        principal: FRONTEND,
        path: '/orders/17',
        host: 'orders.shop.svc.cluster.local:8080',
        destination: ORDERS,
      }),
    );
    expect(res.status.code).toBe(0);
    expect(decisionLine(res)).toMatchObject({ resource: 'Service::"orders"', policies: ['orders-frontend-access'] });
  });

  it('Host: orders sent to the payments pod is denied as host_mismatch, and the log says both names', async () => {
    const res = await client.check(
      istioRequest({ principal: FRONTEND, method: 'POST', path: '/orders', host: 'orders', destination: PAYMENTS }),
    );
    expect(res.status.code).toBe(7);
    expect(res.denied_response!.status.code).toBe(403);
    expect(denyBody(res).message).toBe(`the host "orders" names orders, but the destination ${PAYMENTS} is payments`);
    expect(decisionLine(res)).toMatchObject({
      decision: 'deny',
      reason: 'host_mismatch',
      status: 403,
      principal: `Workload::"${FRONTEND}"`,
      action: 'Action::"POST"',
      resource: 'Service::"payments"',
      host_mismatch: { host: 'orders', host_service: 'orders', destination: PAYMENTS, destination_service: 'payments' },
    });
    expect(
      metricValue(await server.metricsText(), 'authz_decisions_total{decision="deny",reason="host_mismatch"}'),
    ).toBeGreaterThanOrEqual(1);
  });

  it.each(['orders.shop.svc.cluster.local:8080', 'orders.shop', 'orders.', 'ORDERS:8080'])(
    'the spoofed host %j is caught in every form',
    async (host) => {
      const res = await client.check(
        istioRequest({ principal: FRONTEND, path: '/orders/1', host, destination: PAYMENTS }),
      );
      expect(res.denied_response?.status.code).toBe(403);
      expect(decisionLine(res)).toMatchObject({ reason: 'host_mismatch', resource: 'Service::"payments"' });
    },
  );

  it('with the host the pod really has, payments decides as payments (the frontend may not charge)', async () => {
    const res = await client.check(
      istioRequest({
        principal: FRONTEND,
        method: 'POST',
        path: '/payments/charge',
        host: 'payments.shop:8080',
        destination: PAYMENTS,
      }),
    );
    expect(res.denied_response?.status.code).toBe(403);
    expect(decisionLine(res)).toMatchObject({ reason: 'no_permit', resource: 'Service::"payments"' });
    const status = await client.check(
      istioRequest({ principal: FRONTEND, path: '/payments/9/status', host: '10.244.2.9:8080', destination: PAYMENTS }),
    );
    expect(status.status.code).toBe(0);
  });
});

describe('every form of a name decides as one service', () => {
  // The admin console may do anything, except during orders' lockdown: no form of the name escapes it.
  it.each(['orders.shop.svc.cluster.local:8080', 'orders.shop', 'orders.', 'orders', 'Orders.Shop.Svc'])(
    'a write to %j at a front proxy decides as Service::"orders"',
    async (host) => {
      const res = await client.check(rawHeaderRequest({ method: 'POST', path: '/orders', host, headers: {} }));
      // No mTLS at the edge: the caller is anonymous, the Host (as the map resolves it) names the service.
      expect(res.status.code).toBe(7);
      expect(decisionLine(res)).toMatchObject({ decision: 'deny', resource: 'Service::"orders"' });
    },
  );

  it.each(['orders.shop.svc.cluster.local:8080', 'orders.shop', 'orders.', 'orders'])(
    "an admin writing to %j through orders' sidecar gets the lockdown",
    async (host) => {
      const res = await client.check(
        istioRequest({ principal: ADMIN_CONSOLE, method: 'POST', path: '/orders', host, destination: ORDERS }),
      );
      expect(res.denied_response?.status.code).toBe(503);
      expect(denyBody(res)).toMatchObject({ message: 'orders is in maintenance', policies: ['lockdown-orders'] });
    },
  );
});

describe('SPIFFE ids are parsed strictly', () => {
  it('a workload of namespace shop reads inventory; the smuggled id gets no namespace and is refused', async () => {
    const ok = await client.check(
      istioRequest({
        principal: FRONTEND,
        path: '/stock',
        host: 'inventory',
        destination: 'spiffe://cluster.local/ns/shop/sa/inventory',
      }),
    );
    expect(ok.status.code).toBe(0);
    const smuggled = await client.check(
      istioRequest({
        principal: SMUGGLED,
        path: '/stock',
        host: 'inventory',
        destination: 'spiffe://cluster.local/ns/shop/sa/inventory',
      }),
    );
    expect(smuggled.denied_response?.status.code).toBe(403);
    expect(decisionLine(smuggled)).toMatchObject({
      reason: 'no_permit',
      principal: `Workload::"${SMUGGLED}"`,
      resource: 'Service::"inventory"',
    });
  });
});

describe('a risk score from the trusted gateway fails closed', () => {
  const post = (score: string) =>
    istioRequest({
      principal: GATEWAY,
      method: 'POST',
      path: '/cart',
      host: 'frontend',
      destination: FRONTEND,
      headers: { 'x-risk-score': score },
    });

  it('a low score passes', async () => {
    expect((await client.check(post('20'))).status.code).toBe(0);
  });

  it.each(['0,95', '95.0', '+95', '101'])('%j is the highest risk, denied by a risk > 80 forbid', async (score) => {
    const res = await client.check(post(score));
    expect(res.denied_response?.status.code).toBe(403);
    expect(denyBody(res)).toMatchObject({ message: 'risk too high', policies: ['risky-writes'] });
  });
});
