import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAuthz, type AuthzClient } from '../support/grpc-client.js';
import { eventually } from '../support/wait.js';
import { policyDir, removeDir } from '../support/policy-dir.js';
import { FRONTEND, istioRequest } from '../support/requests.js';
import { metricValue } from '../support/admin-http.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

const READS_BY_FRONTEND = `@id("frontend-reads") permit (principal == Workload::"${FRONTEND}", action in Action::"read", resource) when { context.path like "/orders*" };`;
const BLOCK_HEADER =
  '@id("blocked") @status("429") forbid (principal, action, resource) when { context.headers has "x-block" };';

let server: TestServer;
let client: AuthzClient;
let dir: string;

beforeAll(async () => {
  dir = policyDir({ 'main.cedar': `${READS_BY_FRONTEND}\n${BLOCK_HEADER}` });
  server = await startTestServer({ policies: dir });
  client = connectAuthz(server.grpcPort);
});

afterAll(async () => {
  client?.close();
  await server?.close();
  removeDir(dir);
});

const lookups = async (result: string) =>
  metricValue(await server.metricsText(), `authz_decision_cache_lookups_total{result="${result}"}`);
const orderRead = (extra: Record<string, string> = {}) =>
  client.check(istioRequest({ principal: FRONTEND, path: '/orders/17', headers: extra }));

describe('decision cache in the server', () => {
  it('a repeat is answered from the cache, with its own decision id, and logged as cached', async () => {
    const hitsBefore = await lookups('hit');
    const first = await orderRead({ 'x-request-id': 'r-1' });
    // Only x-request-id and the header values no policy reads differ: the same entry answers.
    const second = await orderRead({ 'x-request-id': 'r-2', 'user-agent': 'other/1.0' });
    expect(first.status.code).toBe(0);
    expect(second.status.code).toBe(0);
    expect(await lookups('hit')).toBe(hitsBefore + 1);
    const ids = [first, second].map((r) => r.dynamic_metadata!.fields!.decision_id.stringValue);
    expect(ids[0]).not.toBe(ids[1]);
    const lines = server.logLines().filter((l) => l.msg === 'decision');
    expect(lines.at(-1)).toMatchObject({ cached: true, decision: 'allow', policies: ['frontend-reads'] });
    expect(lines.at(-2)?.cached).toBeUndefined();
  });

  it('a header a policy tests splits entries: the blocked request is not answered from the allowed one', async () => {
    await orderRead();
    const blocked = await orderRead({ 'x-block': 'anything' });
    expect(blocked.denied_response?.status.code).toBe(429);
    const blockedAgain = await orderRead({ 'x-block': 'another value' });
    expect(blockedAgain.denied_response?.status.code).toBe(429);
  });

  it('a policy swap drops the cache: the next answer follows the new policies', async () => {
    await orderRead();
    expect(metricValue(await server.metricsText(), 'authz_decision_cache_entries')).toBeGreaterThan(0);
    writeFileSync(
      path.join(dir, 'main.cedar'),
      `${BLOCK_HEADER}\n@id("nothing-else") forbid (principal, action, resource) when { context.path like "/orders*" };`,
    );
    await eventually(async () => (await orderRead()).status.code === 7, 5000, 25);
    expect((await orderRead()).denied_response?.status.code).toBe(403);
  });

  it('the cache size and lookups are exported', async () => {
    const text = await server.metricsText();
    for (const sample of [
      'authz_decision_cache_entries',
      'authz_decision_cache_lookups_total{result="miss"}',
      'authz_decision_cache_lookups_total{result="uncacheable"}',
    ]) {
      expect(text).toContain(sample);
    }
  });
});

describe('with the cache turned off', () => {
  it('answers the same and counts no lookups', async () => {
    const s = await startTestServer({ policies: dir, decisionCacheEntries: 0 });
    const c = connectAuthz(s.grpcPort);
    try {
      const res = await c.check(istioRequest({ principal: FRONTEND, path: '/x' }));
      expect(res.status.code).toBe(7);
      expect(metricValue(await s.metricsText(), 'authz_decision_cache_lookups_total{result="miss"}')).toBe(0);
    } finally {
      c.close();
      await s.close();
    }
  });
});
