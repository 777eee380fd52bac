/**
 * The policy directory source after its move behind the BundleSource
 * interface: it still loads at start, follows edits and refuses broken ones.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server/authz-server.js';
import { adminJson, scrapeMetric } from '../support/admin-http.js';
import { type AuthzClient, connectAuthz } from '../support/grpc-client.js';
import { GET_X } from '../support/requests.js';
import { startQuietServer } from '../support/start-server.js';
import { waitFor } from '../support/wait.js';
import { policyFiles } from '../support/bundle-fixtures.js';

let dir: string;
let server: RunningServer;
let client: AuthzClient;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'authz-dir-'));
  writeFileSync(path.join(dir, 'main.cedar'), policyFiles('open').get('main.cedar')!);
  server = await startQuietServer({ policies: dir });
  client = connectAuthz(server.grpcPort);
});
afterAll(async () => {
  client.close();
  await server.close();
});

describe('directory source', () => {
  it('serves the directory, follows an edit, refuses a broken edit', async () => {
    const first = await client.answer(GET_X);
    expect(first).toMatchObject({ allowed: true, version: expect.stringMatching(/^dir-[0-9a-f]{12}$/) });
    expect((await adminJson(server.adminPort, '/bundle')).body).toMatchObject({
      source: { kind: 'directory', path: dir },
      version: first.version,
    });

    writeFileSync(path.join(dir, 'main.cedar'), policyFiles('closed').get('main.cedar')!);
    const closed = await waitFor(
      () => client.answer(GET_X),
      (a) => !a.allowed,
      10_000,
    );
    expect(closed).toMatchObject({ allowed: false, policies: ['x-closed'] });

    writeFileSync(path.join(dir, 'main.cedar'), 'permit (principal, action resource);');
    await waitFor(
      () => scrapeMetric(server.adminPort, 'authz_bundle_loads_total{result="error"}'),
      (n) => n >= 1,
      10_000,
    );
    expect(await client.answer(GET_X)).toMatchObject({ allowed: false, version: closed.version });
    expect((await adminJson(server.adminPort, '/bundle')).body.last_error.message).toMatch(/Cedar parse error/);
  });
});
