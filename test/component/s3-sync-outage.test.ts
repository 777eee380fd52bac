/**
 * The store going away: at start (with and without a persisted last good
 * bundle) and while running. Serving never stops once a set is active, and
 * the server catches up when the store returns. s3rver is stopped and
 * started again on the same port and data, so these run one after another.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { activateVersion } from '../../src/operator/bundle-publish.js';
import type { BundleStore } from '../../src/bundle/store/bundle-store.js';
import { adminJson, scrapeMetric } from '../support/admin-http.js';
import { GET_X } from '../support/requests.js';
import { waitFor } from '../support/wait.js';
import { publish } from '../support/bundle-fixtures.js';
import { startS3Server, TestServers, type ServedServer } from '../support/start-server.js';
import { TestS3Store } from '../support/s3rver-store.js';

/**
 * After an outage the poll backs off (at most 8 x 200 ms here); catching up
 * takes a few polls. Generous for a loaded shared machine; waits end as soon
 * as the condition holds.
 */
const RECOVERY_WAIT_MS = 10_000;

let s3: TestS3Store;
let store: BundleStore;
const servers = new TestServers();

beforeAll(async () => {
  s3 = await TestS3Store.start();
  store = s3.bundleStore('outage');
  await publish(store, 'v1', 'open');
  await publish(store, 'v2', 'closed');
  await publish(store, 'v3', 'open');
});
// A test that fails mid-outage must not leave the next one without a store.
afterEach(async () => {
  if (!s3.isUp) await s3.up();
});
afterAll(async () => {
  await servers.closeAll();
  await s3.close();
});

function serve(flags: Record<string, unknown> = {}): Promise<ServedServer> {
  return servers.add(startS3Server(s3, 'outage', flags));
}

describe('store outages', () => {
  it('store down at start with a persisted bundle: the last good version serves, and the store is caught up with later', async () => {
    const stateDir = mkdtempSync(path.join(tmpdir(), 'authz-state-'));
    await activateVersion(store, 'v1');
    const first = await serve({ stateDir });
    expect(await first.client.answer(GET_X)).toMatchObject({ allowed: true, version: 'v1' });
    expect(readdirSync(path.join(stateDir, 'outage'))).toContain('last-good.json');
    await servers.stop(first);

    await s3.down();
    const restarted = await serve({ stateDir });
    expect((await adminJson(restarted.server.adminPort, '/readyz')).status).toBe(200);
    expect(await restarted.client.answer(GET_X)).toMatchObject({ allowed: true, version: 'v1' });
    const bundle = (await adminJson(restarted.server.adminPort, '/bundle')).body;
    expect(bundle).toMatchObject({
      version: 'v1',
      bundle: { loaded_from: 'last-good', version: 'v1' },
      store: { reachable: false },
    });
    expect(bundle.store.last_error.message).toMatch(/GET s3:\/\/.*\/bundles\/outage\/current\.json: .*ECONNREFUSED/);

    await s3.up();
    await activateVersion(store, 'v2');
    const v2 = await waitFor(
      () => restarted.client.answer(GET_X),
      (a) => a.version === 'v2',
      RECOVERY_WAIT_MS,
    );
    expect(v2).toMatchObject({ allowed: false, version: 'v2' });
    expect((await adminJson(restarted.server.adminPort, '/bundle')).body).toMatchObject({
      bundle: { loaded_from: 'store' },
      store: { reachable: true },
    });
    await servers.stop(restarted);
  });

  it('a restart with the store up reuses the persisted tarball when the pointer still names it', async () => {
    const stateDir = mkdtempSync(path.join(tmpdir(), 'authz-state-'));
    await activateVersion(store, 'v3');
    const first = await serve({ stateDir });
    expect(await scrapeMetric(first.server.adminPort, 'authz_bundle_download_duration_seconds_count')).toBe(1);
    await servers.stop(first);
    const second = await serve({ stateDir });
    expect(await second.client.answer(GET_X)).toMatchObject({ allowed: true, version: 'v3' });
    expect(await scrapeMetric(second.server.adminPort, 'authz_bundle_download_duration_seconds_count')).toBe(0);
    await servers.stop(second);
  });

  it('store down mid-run: decisions and readiness carry on, failures are counted, and the server catches up after', async () => {
    await activateVersion(store, 'v1');
    const running = await serve();
    expect(await running.client.answer(GET_X)).toMatchObject({ allowed: true, version: 'v1' });

    await s3.down();
    const failures = await waitFor(
      () => scrapeMetric(running.server.adminPort, 'authz_bundle_store_errors_total'),
      (n) => n >= 2,
      RECOVERY_WAIT_MS,
    );
    expect(failures).toBeGreaterThanOrEqual(2);
    expect(await running.client.answer(GET_X)).toMatchObject({ allowed: true, version: 'v1' });
    expect((await adminJson(running.server.adminPort, '/readyz')).status).toBe(200);
    const during = (await adminJson(running.server.adminPort, '/bundle')).body;
    expect(during.store.reachable).toBe(false);
    expect(during.store.consecutive_failures).toBeGreaterThanOrEqual(2);
    // An outage is not a bad bundle.
    expect(await scrapeMetric(running.server.adminPort, 'authz_bundle_loads_total{result="error"}')).toBe(0);

    await s3.up();
    await activateVersion(store, 'v2');
    const v2 = await waitFor(
      () => running.client.answer(GET_X),
      (a) => a.version === 'v2',
      RECOVERY_WAIT_MS,
    );
    expect(v2).toMatchObject({ allowed: false, version: 'v2' });
    expect((await adminJson(running.server.adminPort, '/bundle')).body.store).toMatchObject({
      reachable: true,
      consecutive_failures: 0,
    });
    await servers.stop(running);
  });

  it('store down at start and nothing persisted: not ready, requests denied with 503, ready once the store answers', async () => {
    await activateVersion(store, 'v1');
    await s3.down();
    const blind = await serve();
    expect((await adminJson(blind.server.adminPort, '/readyz')).status).toBe(503);
    expect(await blind.client.answer(GET_X)).toMatchObject({ allowed: false, httpStatus: 503, version: '' });

    await s3.up();
    const ready = await waitFor(
      async () => (await adminJson(blind.server.adminPort, '/readyz')).status,
      (s) => s === 200,
      RECOVERY_WAIT_MS,
    );
    expect(ready).toBe(200);
    expect(await blind.client.answer(GET_X)).toMatchObject({ allowed: true, version: 'v1' });
    await servers.stop(blind);
  });
});
