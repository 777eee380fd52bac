/**
 * The sidecar variant's promise: a pod whose first bundle fetch is slow is
 * alive (/healthz 200) from process start and only unready (/readyz 503) until
 * a set is active, so its liveness probe never restarts it mid-load. The S3
 * store sits behind a loopback proxy that holds every request until the test
 * lets it through.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { activateVersion } from '../../src/operator/bundle-publish.js';
import type { RunningServer } from '../../src/server/authz-server.js';
import { startAuthzServer } from '../../src/server/authz-server.js';
import { loadConfig } from '../../src/config/load-config.js';
import { adminJson } from '../support/admin-http.js';
import { connectAuthz } from '../support/grpc-client.js';
import { GET_X } from '../support/requests.js';
import { publish } from '../support/bundle-fixtures.js';
import { TEST_BUCKET, TestS3Store } from '../support/s3rver-store.js';

let s3: TestS3Store;
let proxy: http.Server;
let release: () => void;
const released = new Promise<void>((resolve) => (release = resolve));
let server: RunningServer | undefined;

beforeAll(async () => {
  s3 = await TestS3Store.start();
  const store = s3.bundleStore('slow');
  await publish(store, 'v1', 'open');
  await activateVersion(store, 'v1');
  const upstream = new URL(s3.endpoint);
  // Forwards to s3rver once released; until then the request just waits.
  proxy = http.createServer((req, res) => {
    void released.then(() => {
      const out = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (up) => (res.writeHead(up.statusCode ?? 502, up.headers), up.pipe(res)),
      );
      out.on('error', () => res.destroy());
      req.pipe(out);
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  release();
  await server?.close();
  proxy.closeAllConnections();
  await new Promise((resolve) => proxy.close(resolve));
  await s3.close();
});

it('answers /healthz while the first policy load is still waiting on the store, and /readyz once a set is active', async () => {
  const config = loadConfig({
    flags: {
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      logLevel: 'silent',
      s3Endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
      bucket: TEST_BUCKET,
      bundle: 'slow',
    },
    env: {},
  });
  let adminListening!: (port: number) => void;
  const adminPort = new Promise<number>((resolve) => (adminListening = resolve));
  const starting = startAuthzServer(config, { onAdminListening: adminListening });

  const port = await adminPort;
  expect(await adminJson(port, '/healthz')).toEqual({ status: 200, body: { status: 'ok' } });
  expect(await adminJson(port, '/readyz')).toMatchObject({ status: 503, body: { ready: false, version: null } });
  expect((await adminJson(port, '/bundle')).body).toMatchObject({ version: null });

  release();
  server = await starting;
  expect(server.adminPort).toBe(port);
  expect(await adminJson(port, '/readyz')).toMatchObject({ status: 200, body: { ready: true, version: 'v1' } });
  const client = connectAuthz(server.grpcPort);
  try {
    expect(await client.answer(GET_X)).toMatchObject({ allowed: true, version: 'v1' });
  } finally {
    client.close();
  }
});
