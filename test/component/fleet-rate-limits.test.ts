/**
 * The DDoS scenario across a fleet: three real servers against a real s3rver,
 * counting each other through the fleet heartbeat in a real `nats-server -js`,
 * and `authz alerts serve` flipping the mode. A rule's rate holds for the
 * three together, not for each; when a server leaves, the others' shares grow.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAlertReceiver, type RunningAlertReceiver } from '../../src/cli/alerts-command.js';
import { simpleRequestToCheckRequest } from '../../src/envoy/simple-request.js';
import { createLogger } from '../../src/observability/logger.js';
import { connectAuthz, type AuthzClient } from '../support/grpc-client.js';
import { natsSkipReason, TestNatsServer } from '../support/nats-server.js';
import { eventually, waitFor } from '../support/wait.js';
import { EXAMPLE_POLICIES } from '../support/policy-dir.js';
import { startTestStore, type TestStore } from '../support/s3-store.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

const skip = natsSkipReason();
const SCHEMA = readFileSync(path.join(EXAMPLE_POLICIES, 'schema.cedarschema'), 'utf8');
// Refill so slow that the counts are bursts only, however long the test takes.
const BUNDLE_YAML = `mode: normal
rateLimits:
  - name: anonymous-per-ip
    match: { principalType: Anonymous }
    key: source.ip
    normal: { requestsPerSecond: 0.0001, burst: 30 }
    high-alert: { requestsPerSecond: 0.0001, burst: 6 }
`;
const TOKEN = 'fleet-test-alertmanager-token-42';
/** Heartbeats every 5s; a few of them on a loaded machine. */
const FLEET_WAIT_MS = 30_000;

describe.skipIf(skip !== undefined)('fleet-wide rate limits with three servers', () => {
  let s3: TestStore;
  let nats: TestNatsServer;
  const servers: { server: TestServer; client: AuthzClient }[] = [];
  let receiver: RunningAlertReceiver;
  let ip = 0;

  beforeAll(async () => {
    [s3, nats] = await Promise.all([startTestStore(), TestNatsServer.start()]);
    await s3.publish(
      {
        'main.cedar': '@id("reads") permit(principal, action in Action::"read", resource);',
        'schema.cedarschema': SCHEMA,
        'bundle.yaml': BUNDLE_YAML,
      },
      'v1',
    );
    for (let i = 0; i < 3; i++) {
      const server = await startTestServer({ ...s3.serverFlags, notify: nats.url });
      servers.push({ server, client: connectAuthz(server.grpcPort) });
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'authz-fleet-'));
    writeFileSync(path.join(dir, 'rules.yaml'), 'rules:\n  - alert: DDoSSuspected\n    mode: high-alert\n');
    writeFileSync(path.join(dir, 'token'), TOKEN);
    receiver = await openAlertReceiver(
      {
        listen: '127.0.0.1:0',
        rules: path.join(dir, 'rules.yaml'),
        'token-file': path.join(dir, 'token'),
        'hold-down': '1s',
        's3-endpoint': s3.flags[1],
        bucket: s3.flags[3],
        bundle: s3.flags[5],
        notify: nats.url,
      },
      createLogger({ level: 'silent' }),
    );
  });

  afterAll(async () => {
    await receiver?.close();
    await Promise.all(servers.map(async ({ server, client }) => (client.close(), await server.close())));
    await Promise.all([s3?.close(), nats?.close()]);
  });

  const live = () => servers.filter((s) => s.server.adminPort !== -1);
  const shareServers = async (s: TestServer) =>
    JSON.parse((await s.admin('/safety')).body).rate_limits[0].share.servers as number;
  const fleetSeen = (n: number) =>
    eventually(
      async () => (await Promise.all(live().map((s) => shareServers(s.server)))).every((x) => x === n),
      FLEET_WAIT_MS,
      200,
    );

  /** Anonymous checks from one fresh address, spread round robin over the live servers, as Envoy would. */
  async function roundRobin(n: number): Promise<{ allowed: number; perServer: number[] }> {
    const from = `203.0.113.${++ip}`;
    const targets = live();
    const perServer = targets.map(() => 0);
    for (let i = 0; i < n; i++) {
      const k = i % targets.length;
      const res = await targets[k].client.check(
        simpleRequestToCheckRequest({ method: 'GET', path: '/x', host: 'orders', sourceIp: from }),
      );
      if (res.status.code === 0) perServer[k]++;
    }
    return { allowed: perServer.reduce((a, b) => a + b, 0), perServer };
  }

  it('the heartbeat tells every server it is one of three; each enforces a third', async () => {
    await fleetSeen(3);
    const safety = JSON.parse((await servers[0].server.admin('/safety')).body);
    expect(safety.rate_limits[0]).toMatchObject({
      requests_per_second: 0.0001,
      burst: 30,
      share: { servers: 3, burst: 10 },
    });
  });

  it("normal mode: the fleet together admits the rule's burst of 30 from one address, not 90", async () => {
    expect(await roundRobin(60)).toEqual({ allowed: 30, perServer: [10, 10, 10] });
  });

  it('DDoSSuspected fires: all three go to high-alert, and the three together admit 6 (high-alert burst), not 18', async () => {
    const res = await fetch(`http://127.0.0.1:${receiver.port}/alerts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        version: '4',
        status: 'firing',
        receiver: 'authz',
        alerts: [{ status: 'firing', labels: { alertname: 'DDoSSuspected' }, fingerprint: 'f1' }],
      }),
    });
    expect(res.status).toBe(200);
    // With --notify the receiver pushes the new pointer, as `authz mode set` does.
    expect(((await res.json()) as { result: string }).result).toContain(`pushed to ${nats.url}`);
    // On a miss, what each server runs, compiles and last refused says why.
    const states = await waitFor(
      () => Promise.all(servers.map(async (s) => JSON.parse((await s.server.admin('/bundle')).body))),
      () => servers.every((s) => s.server.policySet.current?.settings.mode === 'high-alert'),
      FLEET_WAIT_MS,
    );
    expect(
      servers.map((s) => s.server.policySet.current?.settings.mode),
      JSON.stringify(states.map((b) => ({ version: b.version, last_error: b.last_error, store: b.store }))),
    ).toEqual(['high-alert', 'high-alert', 'high-alert']);
    const shares = await Promise.all(
      servers.map(async (s) => JSON.parse((await s.server.admin('/safety')).body).rate_limits[0].share),
    );
    expect(await roundRobin(30), JSON.stringify(shares)).toEqual({ allowed: 6, perServer: [2, 2, 2] });
  });

  it('a server leaves: the two left take half each', async () => {
    const gone = servers[2];
    gone.client.close();
    await gone.server.close();
    gone.server.adminPort = -1;
    await fleetSeen(2);
    expect(await roundRobin(20)).toEqual({ allowed: 6, perServer: [3, 3] });
  });
});
