/**
 * A running server follows the store: activation reaches it within one poll
 * interval (plus a second for download and compile), rollback brings the old
 * version back, and a swap under load never mixes two versions in one answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activateVersion, rollbackBundle } from '../../src/operator/bundle-publish.js';
import { adminJson, hasSample, metricsText, scrapeMetric } from '../support/admin-http.js';
import { GET_X } from '../support/requests.js';
import { waitFor } from '../support/wait.js';
import { publish } from '../support/bundle-fixtures.js';
import { startS3Server, TestServers, type ServedServer } from '../support/start-server.js';
import { TestS3Store } from '../support/s3rver-store.js';

/** The promise: a change is enforced within poll-interval + 1 s. */
const POLL_MS = 500;
const PROPAGATION_BOUND_MS = POLL_MS + 1000;

let s3: TestS3Store;
const servers = new TestServers();

beforeAll(async () => {
  s3 = await TestS3Store.start();
});
afterAll(async () => {
  await servers.closeAll();
  await s3.close();
});

function serverOn(bundle: string, pollMs = POLL_MS): Promise<ServedServer> {
  return servers.add(startS3Server(s3, bundle, { pollInterval: `${pollMs}ms` }));
}

describe('propagation from the store to a running server', () => {
  it('enforces an activated version within poll-interval + 1 s; rollback brings the previous one back', async () => {
    const store = s3.bundleStore('prop');
    await publish(store, 'v1', 'open');
    await publish(store, 'v2', 'closed');
    await activateVersion(store, 'v1');
    const { server, client } = await serverOn('prop');

    expect(await client.answer(GET_X)).toMatchObject({ allowed: true, version: 'v1' });
    expect(await scrapeMetric(server.adminPort, 'authz_bundle_info{version="v1",engine="js"}')).toBe(1);

    await activateVersion(store, 'v2');
    const v2 = await waitFor(
      () => client.answer(GET_X),
      (a) => a.version === 'v2',
      PROPAGATION_BOUND_MS,
    );
    expect(v2).toMatchObject({ allowed: false, httpStatus: 403, policies: ['x-closed'], version: 'v2' });
    expect(await scrapeMetric(server.adminPort, 'authz_bundle_info{version="v2",engine="js"}')).toBe(1);
    expect(hasSample(await metricsText(server.adminPort), 'authz_bundle_info{version="v1",engine="js"}')).toBe(false);

    await rollbackBundle(store);
    const back = await waitFor(
      () => client.answer(GET_X),
      (a) => a.version === 'v1',
      PROPAGATION_BOUND_MS,
    );
    expect(back).toMatchObject({ allowed: true, version: 'v1' });

    const bundle = (await adminJson(server.adminPort, '/bundle')).body;
    expect(bundle).toMatchObject({
      version: 'v1',
      last_error: null,
      source: { kind: 's3', bundle: 'prop', pointer_key: 'bundles/prop/current.json' },
      bundle: { version: 'v1', loaded_from: 'store', manifest: { name: 'prop', version: 'v1' } },
      pointer: { status: 'found', pointer: { version: 'v1', previous: 'v2' } },
      store: { reachable: true, consecutive_failures: 0 },
    });
    // bundle.yaml rides along untouched, listed in the manifest.
    expect(Object.keys(bundle.bundle.manifest.files)).toContain('bundle.yaml');
    expect(await scrapeMetric(server.adminPort, 'authz_bundle_loads_total{result="success"}')).toBe(3);
    expect(await scrapeMetric(server.adminPort, 'authz_bundle_download_duration_seconds_count')).toBe(3);
    expect(await scrapeMetric(server.adminPort, 'authz_bundle_activation_duration_seconds_count')).toBe(3);
    const lastSync = await scrapeMetric(server.adminPort, 'authz_bundle_last_sync_timestamp_seconds');
    expect(lastSync).toBeGreaterThan(Date.now() / 1000 - 5);
  });

  it('an unchanged pointer loads nothing again', async () => {
    const store = s3.bundleStore('steady');
    await publish(store, 'v1', 'open');
    await activateVersion(store, 'v1');
    const { server } = await serverOn('steady', 100);
    const syncBefore = await scrapeMetric(server.adminPort, 'authz_bundle_last_sync_timestamp_seconds');
    // Several polls later: the store was reached again, but nothing was downloaded or compiled.
    const syncAfter = await waitFor(
      () => scrapeMetric(server.adminPort, 'authz_bundle_last_sync_timestamp_seconds'),
      (t) => t > syncBefore,
      10_000,
    );
    expect(syncAfter).toBeGreaterThan(syncBefore);
    expect(await scrapeMetric(server.adminPort, 'authz_bundle_download_duration_seconds_count')).toBe(1);
    expect(await scrapeMetric(server.adminPort, 'authz_bundle_loads_total{result="success"}')).toBe(1);
  });

  it('many decisions in flight during a swap each come from exactly one version', async () => {
    const store = s3.bundleStore('swap');
    await publish(store, 'v1', 'open');
    await publish(store, 'v2', 'closed');
    await activateVersion(store, 'v1');
    const { server } = await serverOn('swap', 100);
    // Several channels, each keeping requests back to back, so decisions are in flight whenever the swap lands.
    const WORKERS = 4;
    const PER_WORKER_IN_FLIGHT = 4;
    const workerClients = Array.from({ length: WORKERS }, () => servers.client(server));
    let swapSeenAt = 0;
    const answers: {
      version: string;
      allowed: boolean;
      httpStatus: number;
      policies: string[];
      worker: number;
      seq: number;
    }[] = [];
    let seq = 0;
    const worker = async (w: number): Promise<void> => {
      // Keep going until the swap happened and a few more rounds have been answered by v2.
      while (!swapSeenAt || Date.now() - swapSeenAt < 300) {
        const batch = await Promise.all(
          Array.from({ length: PER_WORKER_IN_FLIGHT }, () => workerClients[w].answer(GET_X)),
        );
        for (const a of batch) {
          answers.push({ ...a, worker: w, seq: seq++ });
          if (a.version === 'v2' && !swapSeenAt) swapSeenAt = Date.now();
        }
      }
    };
    const running = Array.from({ length: WORKERS }, (_, w) => worker(w));
    await new Promise((r) => setTimeout(r, 150));
    await activateVersion(store, 'v2');
    await Promise.race([
      Promise.all(running),
      new Promise((_, reject) => setTimeout(() => reject(new Error('the swap never reached the server')), 10_000)),
    ]);

    const byVersion = (v: string) => answers.filter((a) => a.version === v);
    expect(byVersion('v1').length).toBeGreaterThan(0);
    expect(byVersion('v2').length).toBeGreaterThan(0);
    // Each answer is wholly one version's: v1 allows /x by x-open; v2 denies it with x-closed.
    for (const a of answers) {
      if (a.version === 'v1') expect(a).toMatchObject({ allowed: true, httpStatus: 200 });
      else expect(a).toMatchObject({ version: 'v2', allowed: false, httpStatus: 403, policies: ['x-closed'] });
    }
    // And the swap is one step: once a batch has seen v2, no later batch of that worker sees v1.
    for (let w = 0; w < WORKERS; w++) {
      const mine = answers.filter((a) => a.worker === w);
      const firstV2 = mine.findIndex((a) => a.version === 'v2');
      const lastBatchStart = firstV2 - (firstV2 % PER_WORKER_IN_FLIGHT) + PER_WORKER_IN_FLIGHT;
      expect(mine.slice(lastBatchStart).every((a) => a.version === 'v2')).toBe(true);
    }
  });
});
