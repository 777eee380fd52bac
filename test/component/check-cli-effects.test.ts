/** `authz check` shows the effects an allow carries, locally and from a running server. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { policyDir, removeDir } from '../support/policy-dir.js';
import { FRONTEND } from '../support/requests.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

const POLICY = `
@id("orders-read")
@strip_headers("cookie")
@set_headers("x-user-id: {principal.id}; x-email: {principal.email}")
@strip_query("access_token")
@response_headers("cache-control: no-store")
permit (principal, action, resource == Service::"orders");

@id("orders-ns")
@set_headers("x-user-id: {principal.namespace}")
permit (principal, action, resource == Service::"orders");
`;

let dir: string;
let server: TestServer;

beforeAll(async () => {
  dir = policyDir({ 'orders.cedar': POLICY });
  server = await startTestServer({ policies: dir });
});

afterAll(async () => {
  await server?.close();
  removeDir(dir);
});

const args = [
  'check',
  '--method',
  'GET',
  '--path',
  '/orders?access_token=t',
  '--host',
  'orders',
  '--principal',
  FRONTEND,
];

describe('authz check and effects', () => {
  it('lists the effects by name, with conflicts and left-out headers', async () => {
    const r = await runCli([...args, '--policies', dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      [
        'effects:    request headers set: x-user-id',
        '            request headers removed: cookie, x-email',
        '            query parameters removed: access_token',
        '            response headers added: cache-control',
        '            conflict: x-user-id set by orders-read and orders-ns; orders-read wins',
        '            left out: x-email (principal.email is absent)',
      ].join('\n'),
    );
  });

  it('--json carries the effect report', async () => {
    const r = await runCli([...args, '--policies', dir, '--json']);
    const doc = JSON.parse(r.stdout);
    expect(doc.effects).toEqual({
      headers_set: ['x-user-id'],
      headers_removed: ['cookie', 'x-email'],
      query_removed: ['access_token'],
      response_headers: ['cache-control'],
      conflicts: [{ header: 'x-user-id', kept: 'orders-read', dropped: 'orders-ns' }],
      skipped: [{ header: 'x-email', reason: 'principal.email is absent' }],
    });
    expect(doc.checkResponse.ok_response.query_parameters_to_remove).toEqual(['access_token']);
  });

  it('--server shows the effects the running server answered', async () => {
    const r = await runCli([...args, '--server', `127.0.0.1:${server.grpcPort}`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      [
        'effects:    request headers set: x-user-id',
        '            request headers removed: cookie, x-email',
        '            query parameters removed: access_token',
        '            response headers added: cache-control',
      ].join('\n'),
    );
  });
});
