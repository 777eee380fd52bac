/**
 * Issue 15 item 3: with the JS engine, the serving thread never loads Cedar's
 * wasm. The bundle is parsed and validated by Cedar in a worker thread that
 * exits; requests are decided by the JS engine. `/bundle` tells whether this
 * thread has loaded the wasm module (each thread has its own), and this test
 * file's thread is the server's: nothing else here touches Cedar.
 *
 * The wasm-engine server comes last: once it loads wasm, this thread has it.
 */
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAuthz, type AuthzClient } from '../support/grpc-client.js';
import { copyExamplePolicies, removeDir } from '../support/policy-dir.js';
import { ADMIN_CONSOLE, FRONTEND, istioRequest } from '../support/requests.js';
import { startTestServer, type TestServer } from '../support/start-server.js';
import { waitFor } from '../support/wait.js';

let dir: string;
const servers: TestServer[] = [];
const clients: AuthzClient[] = [];

beforeAll(() => {
  dir = copyExamplePolicies();
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close();
  removeDir(dir);
});

async function bundleInfo(server: TestServer): Promise<Record<string, unknown>> {
  const res = await server.admin('/bundle');
  expect(res.status).toBe(200);
  return JSON.parse(res.body) as Record<string, unknown>;
}

describe('serving the example bundle on the JS engine', () => {
  let server: TestServer;
  let client: AuthzClient;

  beforeAll(async () => {
    server = await startTestServer({ policies: dir, engine: 'js' });
    servers.push(server);
    client = connectAuthz(server.grpcPort);
    clients.push(client);
  });

  it('compiles, decides allows and denies, cached and not, without loading wasm in the serving thread', async () => {
    const requests = [
      istioRequest({ principal: FRONTEND, path: '/orders/17', ext: { service: 'orders' } }),
      istioRequest({ principal: FRONTEND, method: 'DELETE', path: '/orders/17', ext: { service: 'orders' } }),
      istioRequest({ path: '/orders/17', ext: { service: 'orders', priority: 'low' } }),
      istioRequest({ principal: ADMIN_CONSOLE, path: '/admin/users', ext: { service: 'users' } }),
      istioRequest({ principal: FRONTEND, path: '/payments/1', ext: { service: 'payments' } }),
    ];
    const codes = new Set<number>();
    for (const req of [...requests, ...requests]) codes.add((await client.check(req)).status.code);
    // Both answers were given (OK and PERMISSION_DENIED at least), so both paths of the engine ran.
    expect(codes.has(0)).toBe(true);
    expect([...codes].some((c) => c !== 0)).toBe(true);

    const info = await bundleInfo(server);
    expect(info.engine).toBe('js');
    expect(info.engine_fallback_policies).toBeUndefined();
    expect(info.wasm_loaded).toBe(false);
    const activated = server.logLines().find((l) => l.msg === 'policy set activated');
    expect(activated?.wasm_loaded).toBe(false);
  });

  it('a reload swaps in the new version, still without wasm in the serving thread', async () => {
    const before = (await bundleInfo(server)).version;
    appendFileSync(path.join(dir, 'orders.cedar'), '\n// touched by the test\n');
    const info = await waitFor(
      () => bundleInfo(server),
      (b) => b.version !== before && b.compiling === null,
      15_000,
    );
    expect(info.version).not.toBe(before);
    expect(info.last_error).toBeNull();
    const res = await client.check(
      istioRequest({ principal: FRONTEND, path: '/orders/18', ext: { service: 'orders' } }),
    );
    expect(res.status.code).toBe(0);
    expect((await bundleInfo(server)).wasm_loaded).toBe(false);
  });
});

describe('serving on --engine wasm', () => {
  it('loads wasm in the serving thread (the flag is not a constant)', async () => {
    const server = await startTestServer({ policies: dir, engine: 'wasm' });
    servers.push(server);
    const client = connectAuthz(server.grpcPort);
    clients.push(client);
    const res = await client.check(
      istioRequest({ principal: FRONTEND, path: '/orders/17', ext: { service: 'orders' } }),
    );
    expect(res.status.code).toBe(0);
    const info = await bundleInfo(server);
    expect(info.engine).toBe('wasm');
    expect(info.wasm_loaded).toBe(true);
  });
});
