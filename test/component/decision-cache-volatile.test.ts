/**
 * Regression (issue 14 item 5): with the example bundle, whose load-shedding
 * policy reads `context.load` and is in every slice, a repeated check is a
 * cache hit. The slice's stable policies are answered from the cache; the
 * load-shedding policy is still evaluated on every request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAuthz, type AuthzClient } from '../support/grpc-clients.js';
import { copyExamplePolicies, removeDir } from '../support/policy-dir.js';
import { FRONTEND, istioRequest } from '../support/requests.js';
import { metricValue, startTestServer, type TestServer } from '../support/start-server.js';

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

const lookups = async (result: string): Promise<number> => metricValue(await server.metricsText(), `authz_decision_cache_lookups_total{result="${result}"}`);

describe('the decision cache holds with the example bundle (load-shedding.cedar reads context.load)', () => {
  it('the same check sent twice is a miss, then a hit; nothing is uncacheable', async () => {
    const req = istioRequest({ principal: FRONTEND, path: '/orders/17', ext: { service: 'orders' } });
    const before = { hit: await lookups('hit'), miss: await lookups('miss'), uncacheable: await lookups('uncacheable') };
    const first = await client.check(req);
    const second = await client.check(req);
    expect(first.status.code).toBe(0);
    expect(second.status.code).toBe(0);
    expect(await lookups('miss')).toBe(before.miss + 1);
    expect(await lookups('hit')).toBe(before.hit + 1);
    expect(await lookups('uncacheable')).toBe(before.uncacheable);
  });

  it('a cached stable part does not hide the volatile policy: anonymous low-priority requests are still decided per request', async () => {
    // Load is low in a test, so the load-shedding forbid is not satisfied: the answer is the stable policies' (401 from orders).
    const req = istioRequest({ path: '/orders/17', ext: { service: 'orders', priority: 'low' } });
    const first = await client.check(req);
    const second = await client.check(req);
    expect(first.status.code).not.toBe(0);
    expect(second.deniedResponse?.status?.code).toBe(first.deniedResponse?.status?.code);
    expect(await lookups('uncacheable')).toBe(0);
  });
});
