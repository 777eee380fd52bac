/**
 * Push over a real `nats-server -js` on loopback, with real servers against a
 * real s3rver. Servers here poll only once a minute, so a change they enforce
 * within the waits below reached them by push, not by a poll; where polling is
 * the point (NATS down), the poll interval is short.
 *
 * Every message is only a hint: the store's pointer and the bundle's sha256
 * decide. Duplicate, out-of-order and forged messages are put straight into
 * the bucket, as a confused or hostile publisher would.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'nats';
import { activateVersion } from '../../src/operator/bundle-publish.js';
import type { BundlePointer, BundleStore } from '../../src/bundle/store/bundle-store.js';
import { POINTER_BUCKET, pointerKey, locationUrl } from '../../src/bundle/notify/pointer-channel.js';
import type { RunningServer } from '../../src/server/authz-server.js';
import { adminJson, scrapeMetric } from '../support/admin-http.js';
import { GET_X } from '../support/requests.js';
import { waitFor } from '../support/wait.js';
import { publish } from '../support/bundle-fixtures.js';
import { runCli } from '../support/cli.js';
import { natsSkipReason, TestNatsServer } from '../support/nats-server.js';
import { startS3Server, TestServers, type ServedServer } from '../support/start-server.js';
import { TEST_BUCKET, TestS3Store } from '../support/s3rver-store.js';

const skip = natsSkipReason();
/** Long enough that only push explains a change seen within PUSH_WAIT_MS. */
const POLL_ONLY_AS_SAFETY_NET = '60s';
/** Generous for a loaded shared machine; waits end as soon as the condition holds. */
const PUSH_WAIT_MS = 10_000;

let s3: TestS3Store;
let nats: TestNatsServer;
const servers = new TestServers();

describe.skipIf(skip !== undefined)('push over NATS JetStream', () => {
  beforeAll(async () => {
    [s3, nats] = await Promise.all([TestS3Store.start(), TestNatsServer.start()]);
  });
  afterEach(async () => {
    if (!nats.isUp) await nats.up();
    if (!s3.isUp) await s3.up();
  });
  afterAll(async () => {
    await servers.closeAll();
    await Promise.all([s3?.close(), nats?.close()]);
  });

  function serve(bundle: string, flags: Record<string, unknown> = {}): Promise<ServedServer> {
    return servers.add(
      startS3Server(s3, bundle, { notify: nats.url, pollInterval: POLL_ONLY_AS_SAFETY_NET, ...flags }),
    );
  }

  const storeFlags = (bundle: string) => [
    '--s3-endpoint',
    s3.endpoint,
    '--bucket',
    TEST_BUCKET,
    '--bundle',
    bundle,
    '--notify',
    nats.url,
  ];
  const pushState = async (server: RunningServer) => (await adminJson(server.adminPort, '/bundle')).body.push;
  const connected = (server: RunningServer) =>
    waitFor(
      () => pushState(server),
      (p) => p.state === 'connected',
      PUSH_WAIT_MS,
    );

  async function storeWith(bundle: string, versions: Record<string, 'open' | 'closed'>): Promise<BundleStore> {
    const store = s3.bundleStore(bundle);
    for (const [v, variant] of Object.entries(versions)) await publish(store, v, variant);
    return store;
  }

  it('delivers an activation to a running server long before its next poll, and /bundle and /metrics show the channel', async () => {
    const store = await storeWith('push', { v1: 'open', v2: 'closed' });
    await activateVersion(store, 'v1');
    const { server, client } = await serve('push');
    await connected(server);
    expect(await client.answer(GET_X)).toMatchObject({ allowed: true, version: 'v1' });

    const cli = await runCli(['bundle', 'activate', 'v2', ...storeFlags('push')]);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain(`pushed to ${nats.url}`);
    const v2 = await waitFor(
      () => client.answer(GET_X),
      (a) => a.version === 'v2',
      PUSH_WAIT_MS,
    );
    expect(v2).toMatchObject({ allowed: false, httpStatus: 403, version: 'v2' });

    const push = await pushState(server);
    expect(push).toMatchObject({ kind: 'nats', state: 'connected', servers: nats.url, invalid_messages: 0 });
    expect(push.messages).toBeGreaterThanOrEqual(1);
    expect(await scrapeMetric(server.adminPort, 'authz_push_connected')).toBe(1);
    expect(await scrapeMetric(server.adminPort, 'authz_push_messages_total{result="hint"}')).toBeGreaterThanOrEqual(1);
    const age = await scrapeMetric(server.adminPort, 'authz_push_last_message_age_seconds');
    expect(age).toBeGreaterThanOrEqual(0);
  });

  it('replays the current pointer to a server that connects after the change', async () => {
    const store = await storeWith('replay', { v1: 'open', v2: 'closed' });
    await activateVersion(store, 'v1');
    // The change is announced while no server is listening.
    expect((await runCli(['bundle', 'activate', 'v2', ...storeFlags('replay')])).code).toBe(0);
    const { server, client } = await serve('replay');
    // The watch hands the new server the message it missed, without anyone publishing again.
    const push = await waitFor(
      () => pushState(server),
      (p) => p.messages >= 1,
      PUSH_WAIT_MS,
    );
    expect(push.messages).toBeGreaterThanOrEqual(1);
    expect(await client.answer(GET_X)).toMatchObject({ version: 'v2', allowed: false });
  });

  it('with NATS down, the command says push failed and servers converge by polling', async () => {
    const store = await storeWith('down', { v1: 'open', v2: 'closed' });
    await activateVersion(store, 'v1');
    const { server, client } = await serve('down', { pollInterval: '500ms' });
    await connected(server);

    await nats.down();
    await waitFor(
      () => pushState(server),
      (p) => p.state !== 'connected',
      PUSH_WAIT_MS,
    );
    const cli = await runCli(['bundle', 'activate', 'v2', ...storeFlags('down')]);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain('activated down v2');
    expect(cli.stderr).toMatch(/push to nats:\/\/127\.0\.0\.1:\d+ failed: .*servers converge by polling/);
    const v2 = await waitFor(
      () => client.answer(GET_X),
      (a) => a.version === 'v2',
      PUSH_WAIT_MS,
    );
    expect(v2).toMatchObject({ version: 'v2', allowed: false });
    expect(await scrapeMetric(server.adminPort, 'authz_push_connected')).toBe(0);
  });

  it('after NATS restarts, the watch resumes and pushes reach the server again', async () => {
    const store = await storeWith('restart', { v1: 'open', v2: 'closed', v3: 'open' });
    await activateVersion(store, 'v1');
    const { server, client } = await serve('restart');
    await connected(server);

    await nats.down();
    await waitFor(
      () => pushState(server),
      (p) => p.state !== 'connected',
      PUSH_WAIT_MS,
    );
    await nats.up();
    await connected(server);

    expect((await runCli(['bundle', 'activate', 'v2', ...storeFlags('restart')])).code).toBe(0);
    expect(
      await waitFor(
        () => client.answer(GET_X),
        (a) => a.version === 'v2',
        PUSH_WAIT_MS,
      ),
    ).toMatchObject({ version: 'v2' });
    expect((await runCli(['bundle', 'activate', 'v3', ...storeFlags('restart')])).code).toBe(0);
    expect(
      await waitFor(
        () => client.answer(GET_X),
        (a) => a.version === 'v3',
        PUSH_WAIT_MS,
      ),
    ).toMatchObject({ version: 'v3', allowed: true });
  });

  describe('messages are hints; the store decides', () => {
    let store: BundleStore;
    let pointers: Record<string, BundlePointer>;

    /** Put a message on the bundle's key as any NATS client could. */
    async function putRaw(value: string): Promise<void> {
      const nc = await connect({ servers: nats.url });
      try {
        const kv = await nc.jetstream().views.kv(POINTER_BUCKET, { history: 1 });
        await kv.put(pointerKey(store.location), value);
      } finally {
        await nc.close();
      }
    }
    const message = (pointer: BundlePointer, where = locationUrl(store.location)) =>
      JSON.stringify({ store: where, pointer, published_at: new Date().toISOString() });

    beforeAll(async () => {
      store = await storeWith('hints', { v1: 'open', v2: 'closed', v3: 'open' });
      pointers = {};
      for (const v of ['v1', 'v2', 'v3']) pointers[v] = (await activateVersion(store, v)).pointer;
      // The store now says v3.
    });

    it('duplicate and out-of-order messages never move a server below the store pointer', async () => {
      const { server, client } = await serve('hints');
      await connected(server);
      expect(await client.answer(GET_X)).toMatchObject({ version: 'v3' });
      const loads = await scrapeMetric(server.adminPort, 'authz_bundle_loads_total{result="success"}');
      const before = (await pushState(server)).messages;

      await putRaw(message(pointers.v3));
      await putRaw(message(pointers.v3));
      await putRaw(message(pointers.v1));
      await putRaw(message(pointers.v2));
      await putRaw(message(pointers.v3));
      await waitFor(
        () => pushState(server),
        (p) => p.messages >= before + 5,
        PUSH_WAIT_MS,
      );
      // Each was answered by reading the store, which still says v3: nothing was loaded.
      await waitFor(
        () => scrapeMetric(server.adminPort, 'authz_bundle_last_sync_timestamp_seconds'),
        (t) => t * 1000 > Date.now() - 1000,
        PUSH_WAIT_MS,
      );
      expect(await client.answer(GET_X)).toMatchObject({ version: 'v3', allowed: true });
      expect(await scrapeMetric(server.adminPort, 'authz_bundle_loads_total{result="success"}')).toBe(loads);
    });

    it('a forged message (another version, a wrong sha256, another store, garbage) changes nothing', async () => {
      const { server, client } = await serve('hints');
      await connected(server);
      const loads = await scrapeMetric(server.adminPort, 'authz_bundle_loads_total{result="success"}');

      // Names v2 with a sha256 that is not v2's: were the message trusted, v2 (closed) would be enforced.
      await putRaw(message({ ...pointers.v2, sha256: 'f'.repeat(64), activated_at: new Date().toISOString() }));
      await putRaw(message(pointers.v2, 's3://elsewhere/bundles/hints'));
      await putRaw('{"not": "a pointer"');
      await waitFor(
        () => pushState(server),
        (p) => p.invalid_messages >= 2,
        PUSH_WAIT_MS,
      );
      const push = await pushState(server);
      expect(push.invalid_messages).toBeGreaterThanOrEqual(2);
      expect(
        await scrapeMetric(server.adminPort, 'authz_push_messages_total{result="invalid"}'),
      ).toBeGreaterThanOrEqual(2);
      expect(await client.answer(GET_X)).toMatchObject({ version: 'v3', allowed: true });
      expect(await scrapeMetric(server.adminPort, 'authz_bundle_loads_total{result="success"}')).toBe(loads);
      expect(await scrapeMetric(server.adminPort, 'authz_bundle_loads_total{result="error"}')).toBe(0);
    });
  });

  describe('fleet status and activate --wait', () => {
    it('fleet status lists every live server with its version; --wait returns once all run the new one', async () => {
      const store = await storeWith('fleet', { v1: 'open', v2: 'closed' });
      await activateVersion(store, 'v1');
      const fleet = await Promise.all([serve('fleet'), serve('fleet'), serve('fleet')]);
      await Promise.all(fleet.map(({ server }) => connected(server)));
      const ids = await Promise.all(fleet.map(async ({ server }) => (await pushState(server)).server_id as string));

      const listed = await waitFor(
        async () => JSON.parse((await runCli(['fleet', 'status', '--json', ...storeFlags('fleet')])).stdout),
        (j) => j.servers.length === 3 && j.stragglers.length === 0,
        PUSH_WAIT_MS,
      );
      expect(listed.pointer.version).toBe('v1');
      expect(listed.servers.map((s: { server_id: string }) => s.server_id).sort()).toEqual([...ids].sort());
      for (const s of listed.servers)
        expect(s).toMatchObject({
          version: 'v1',
          state: 'current',
          ready: true,
          policies: 1,
          push: { connected: true },
        });

      const table = await runCli(['fleet', 'status', ...storeFlags('fleet')]);
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/SERVER\s+HOST\s+PID\s+VERSION/);
      for (const id of ids) expect(table.stdout).toMatch(new RegExp(`${id}\\s.*\\sv1\\s.*current`));
      expect(table.stdout).toContain('3 live server(s), 3 current, 0 straggling');

      const waited = await runCli(['bundle', 'activate', 'v2', '--wait', ...storeFlags('fleet')]);
      expect(waited.code).toBe(0);
      expect(waited.stdout).toMatch(/all 3 live server\(s\) run v2/);
      // Returned only once each server enforces it.
      for (const { client } of fleet)
        expect(await client.answer(GET_X)).toMatchObject({ version: 'v2', allowed: false });
    });

    it('--wait exits 1 and names the stragglers when a server cannot take the version', async () => {
      const store = await storeWith('strag', { v1: 'open' });
      await activateVersion(store, 'v1');
      const good = await serve('strag');
      // This one only takes bundles signed with a key nobody signs with: it never gets a set, and never v2.
      const pub = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;
      const keyFile = path.join(mkdtempSync(path.join(tmpdir(), 'authz-key-')), 'pub.pem');
      writeFileSync(keyFile, pub);
      const picky = await serve('strag', { verifyKey: keyFile });
      await Promise.all([connected(good.server), connected(picky.server)]);
      const pickyId = (await pushState(picky.server)).server_id as string;
      await publish(store, 'v2', 'closed');

      const waited = await runCli(['bundle', 'activate', 'v2', '--wait=3s', ...storeFlags('strag')]);
      expect(waited.code).toBe(1);
      expect(waited.stderr).toMatch(/--wait: after 3\.0s, 1 of 2 live server\(s\) do not run v2/);
      expect(waited.stderr).toContain(pickyId);
      expect(waited.stderr).toMatch(
        new RegExp(`${pickyId} .*\\(none\\), not-ready, last error: .*refused by --verify-key`),
      );
      expect(await good.client.answer(GET_X)).toMatchObject({ version: 'v2' });
    });

    it('--wait without --notify is a usage error naming it', async () => {
      const r = await runCli([
        'bundle',
        'activate',
        'v1',
        '--wait',
        '--s3-endpoint',
        s3.endpoint,
        '--bucket',
        TEST_BUCKET,
        '--bundle',
        'fleet',
      ]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('--wait needs --notify');
    });
  });
});
