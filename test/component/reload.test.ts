import { writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAuthz, type AuthzClient } from '../support/grpc-client.js';
import { eventually } from '../support/wait.js';
import { policyDir, removeDir } from '../support/policy-dir.js';
import { istioRequest } from '../support/requests.js';
import { metricValue } from '../support/admin-http.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

const ALLOW_READS = '@id("reads") permit(principal, action in Action::"read", resource);';

let server: TestServer;
let client: AuthzClient;
let dir: string;

beforeAll(async () => {
  dir = policyDir({ 'main.cedar': ALLOW_READS });
  server = await startTestServer({ policies: dir });
  client = connectAuthz(server.grpcPort);
});

afterAll(async () => {
  client?.close();
  await server?.close();
  removeDir(dir);
});

const get = () => client.check(istioRequest({ method: 'GET', path: '/x', host: 'svc' }));
const post = () => client.check(istioRequest({ method: 'POST', path: '/x', host: 'svc' }));

describe('policy directory hot reload', () => {
  // The watcher polls every 250 ms; how fast a change lands is measured, not asserted here.
  it('an edit changes decisions without a restart', async () => {
    expect((await get()).status.code).toBe(0);
    expect((await post()).status.code).toBe(7);
    writeFileSync(
      path.join(dir, 'main.cedar'),
      `${ALLOW_READS}\n@id("writes") permit(principal, action in Action::"write", resource);`,
    );
    await eventually(async () => (await post()).status.code === 0, 3000, 20);
  });

  it('a broken file changes nothing: refused, counted, logged, last good keeps serving', async () => {
    const versionBefore = server.policySet.current!.version;
    const errorsBefore = metricValue(await server.metricsText(), 'authz_bundle_loads_total{result="error"}');
    writeFileSync(path.join(dir, 'broken.cedar'), 'permit(principal, action resource);');
    await eventually(
      async () =>
        metricValue(await server.metricsText(), 'authz_bundle_loads_total{result="error"}') === errorsBefore + 1,
      2000,
    );
    expect(server.policySet.current!.version).toBe(versionBefore);
    expect((await post()).status.code).toBe(0);
    expect((await server.admin('/readyz')).status).toBe(200);
    const bundle = JSON.parse((await server.admin('/bundle')).body);
    expect(bundle.last_error.message).toMatch(/Cedar parse error: broken\.cedar:\d+:\d+: /);
    const refusal = server.logLines().find((l) => l.msg === 'policy set refused; the previous set keeps serving');
    expect(String(refusal?.error)).toMatch(/broken\.cedar/);
    rmSync(path.join(dir, 'broken.cedar'));
  });

  it('a set that fails schema validation is refused', async () => {
    const versionBefore = server.policySet.current!.version;
    writeFileSync(
      path.join(dir, 'schema.cedarschema'),
      'entity Workload; entity Anonymous; entity Service; action "GET" appliesTo { principal: [Workload], resource: [Service] };',
    );
    await eventually(() => server.policySet.lastError?.message.match(/schema|validate/), 2000);
    expect(server.policySet.current!.version).toBe(versionBefore);
    rmSync(path.join(dir, 'schema.cedarschema'));
  });
});

describe('start-up', () => {
  it('a server whose directory holds no valid set is up but NOT_SERVING and denies with 503', async () => {
    const bad = policyDir({ 'x.cedar': 'nonsense' });
    const s = await startTestServer({ policies: bad });
    const c = connectAuthz(s.grpcPort);
    try {
      expect(await c.health('')).toBe('NOT_SERVING');
      expect((await s.admin('/readyz')).status).toBe(503);
      const res = await c.check(istioRequest({ path: '/x', host: 'svc' }));
      expect(res.denied_response!.status.code).toBe(503);
      writeFileSync(path.join(bad, 'x.cedar'), ALLOW_READS);
      await eventually(async () => (await c.health('')) === 'SERVING', 2000);
      expect((await c.check(istioRequest({ path: '/x', host: 'svc' }))).status.code).toBe(0);
    } finally {
      c.close();
      await s.close();
      removeDir(bad);
    }
  });
});
