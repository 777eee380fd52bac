/**
 * --max-policy-age: a server that cannot confirm its version with the store
 * for too long reports not-ready and answers by its fail mode; it recovers
 * by itself when the store answers again. Without the flag, an outage changes
 * nothing (store-outage tests cover that).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activateVersion } from '../../src/operator/bundle-publish.js';
import type { RunningServer } from '../../src/server/authz-server.js';
import { adminJson } from '../support/admin-http.js';
import { type AuthzClient, connectAuthz } from '../support/grpc-client.js';
import { GET_X } from '../support/requests.js';
import { waitFor } from '../support/wait.js';
import { publish } from '../support/bundle-fixtures.js';
import { startS3Server } from '../support/start-server.js';
import { TestS3Store } from '../support/s3rver-store.js';

/** Backoff during the outage is at most 8 polls of 200 ms; generous for a loaded machine. */
const WAIT_MS = 10_000;

let s3: TestS3Store;
let server: RunningServer;
let client: AuthzClient;

beforeAll(async () => {
  s3 = await TestS3Store.start();
  const store = s3.bundleStore('stale');
  await publish(store, 'v1', 'open');
  await activateVersion(store, 'v1');
  server = await startS3Server(s3, 'stale', { pollInterval: '200ms', maxPolicyAge: '3s' });
  client = connectAuthz(server.grpcPort);
});
afterAll(async () => {
  client?.close();
  await server?.close();
  if (!s3.isUp) await s3.up();
  await s3.close();
});

describe('stale-policy guard', () => {
  it('goes not-ready and answers by the fail mode while the store cannot confirm the version, and recovers after', async () => {
    expect(await client.answer(GET_X)).toMatchObject({ allowed: true, version: 'v1' });
    expect((await adminJson(server.adminPort, '/readyz')).body).toMatchObject({
      ready: true,
      policy_age: { max_policy_age_ms: 3000, stale: false },
    });

    await s3.down();
    const ready = await waitFor(
      () => adminJson(server.adminPort, '/readyz'),
      (r) => r.status === 503,
      WAIT_MS,
    );
    expect(ready.body).toMatchObject({ ready: false, version: 'v1', policy_age: { stale: true } });
    const closed = await client.answer(GET_X);
    expect(closed).toMatchObject({ allowed: false, httpStatus: 503, version: 'v1' });
    expect(closed.message).toMatch(
      /policy version v1 not confirmed with the store for [\d.]+s \(max policy age 3\.0s\); failing closed/,
    );
    // A route that fails open lets the request through, marked for the upstream.
    const opened = await client.answer({ ...GET_X, contextExtensions: { fail_mode: 'open' } });
    expect(opened).toMatchObject({ allowed: true });

    await s3.up();
    const back = await waitFor(
      () => adminJson(server.adminPort, '/readyz'),
      (r) => r.status === 200,
      WAIT_MS,
    );
    expect(back.body).toMatchObject({ ready: true, policy_age: { stale: false } });
    expect(await client.answer(GET_X)).toMatchObject({ allowed: true, version: 'v1' });
  });
});
