/**
 * Regression (issue 14 item 5): with the example bundle, whose load-shedding
 * policy reads `context.load` and is in every slice, a repeated check is a
 * cache hit. The slice's stable policies are answered from the cache; the
 * load-shedding policy is still evaluated on every request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAuthz, type AuthzClient } from '../support/grpc-client.js';
import { copyExamplePolicies, removeDir } from '../support/policy-dir.js';
import { FRONTEND, istioRequest } from '../support/requests.js';
import { metricValue } from '../support/admin-http.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

let server: TestServer;
let client: AuthzClient;
let dir: string;

beforeAll(async () => {
  dir = copyExamplePolicies();
  server = await startTestServer({ policies: dir });
  client = connectAuthz(server.grpcPort);
});

afterAll(async () => {
  client?.close();
  await server?.close();
  removeDir(dir);
});

const lookups = async (result: string): Promise<number> =>
  metricValue(await server.metricsText(), `authz_decision_cache_lookups_total{result="${result}"}`);

describe('the decision cache holds with the example bundle (load-shedding.cedar reads context.load)', () => {
  it('the same check sent twice is a miss, then a hit; nothing is uncacheable', async () => {
    const req = istioRequest({ principal: FRONTEND, path: '/orders/17', ext: { service: 'orders' } });
    const before = {
      hit: await lookups('hit'),
      miss: await lookups('miss'),
      uncacheable: await lookups('uncacheable'),
    };
    const first = await client.check(req);
    const second = await client.check(req);
    expect(first.status.code).toBe(0);
    expect(second.status.code).toBe(0);
    expect(await lookups('miss')).toBe(before.miss + 1);
    expect(await lookups('hit')).toBe(before.hit + 1);
    expect(await lookups('uncacheable')).toBe(before.uncacheable);
  });

  it('a cached stable part does not hide the volatile policy: anonymous low-priority requests are still decided per request', async () => {
    const req = istioRequest({ path: '/orders/17', ext: { service: 'orders', priority: 'low' } });
    await client.check(req);
    await client.check(req);
    // Each answer holds the cached stable forbid (401 from orders) and, when this busy machine's event loop
    // read ≥ 90 % load at that moment, the load-shedding forbid too (503, first in policy order).
    const lines = server
      .logLines()
      .filter((l) => l.msg === 'decision' && l.path === '/orders/17' && String(l.principal).startsWith('Anonymous'));
    expect(lines).toHaveLength(2);
    for (const l of lines) {
      const policies = l.policies as string[];
      expect(policies.at(-1)).toBe('orders-no-anonymous');
      expect(l.status).toBe(policies.includes('shed-anonymous-under-load') ? 503 : 401);
    }
    expect(await lookups('uncacheable')).toBe(0);
  });
});
