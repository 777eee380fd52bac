/**
 * The process never dies of a request: random bytes and random HTTP/1.1
 * request lines at the admin port, random HTTP/2 frames at the gRPC port,
 * then both must still answer. Each connection is bounded (it ends when the
 * server closes it or after CONNECTION_BUDGET_MS), so the run is too.
 */
import fc from 'fast-check';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAuthz } from '../support/grpc-client.js';
import { h2Frame, H2_PREFACE } from '../support/hostile-requests.js';
import { copyExamplePolicies, removeDir } from '../support/policy-dir.js';
import { istioRequest } from '../support/requests.js';
import { metricValue } from '../support/admin-http.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

const CONNECTION_BUDGET_MS = 1000;

let server: TestServer;
let dir: string;

beforeAll(async () => {
  dir = copyExamplePolicies();
  server = await startTestServer({ policies: dir });
});

afterAll(async () => {
  await server?.close();
  removeDir(dir);
});

/** Sends the bytes, half-closes, and resolves with what came back once the server closes (or the budget ends). */
function exchange(port: number, bytes: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(done, CONNECTION_BUDGET_MS);
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('error', done);
    socket.on('close', done);
    socket.end(bytes);
  });
}

async function expectBothAnswer(): Promise<void> {
  const client = connectAuthz(server.grpcPort);
  try {
    const res = await client.check(
      istioRequest({
        path: '/public/logo.png',
        host: 'frontend:8080',
        destination: 'spiffe://cluster.local/ns/shop/sa/frontend',
      }),
    );
    expect(res.status.code).toBe(0);
  } finally {
    client.close();
  }
  expect((await server.admin('/healthz')).status).toBe(200);
}

const token = fc.constantFrom('GET', 'POST', 'HEAD', 'OPTIONS', 'PRI', 'G\u0000T', '', ' ');
const target = fc.oneof(
  fc.constantFrom(
    '/',
    '//[',
    '//[::1',
    '/healthz',
    '/metrics?x=%zz',
    '/%',
    'http://[',
    '*',
    '/bundle#',
    '/readyz/../..',
    '//',
    '\\\\',
  ),
  fc.string({ maxLength: 40 }),
  fc.stringMatching(/^\/[\x21-\x7e]{0,40}$/),
);
const version = fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9', '', 'http/1.1');
const header = fc.oneof(
  fc.constantFrom(
    'Host: x',
    'Host: [',
    'Content-Length: -1',
    'Content-Length: 99999999999',
    'Transfer-Encoding: chunked',
    'Expect: 100-continue',
  ),
  fc.string({ maxLength: 30 }),
);

describe('fuzzing the ports', () => {
  it('random request lines at the admin port', async () => {
    await fc.assert(
      fc.asyncProperty(token, target, version, fc.array(header, { maxLength: 4 }), async (method, path, v, headers) => {
        await exchange(
          server.adminPort,
          Buffer.from(`${method} ${path} ${v}\r\n${headers.join('\r\n')}\r\n\r\n`, 'latin1'),
        );
      }),
      { numRuns: 150 },
    );
    await expectBothAnswer();
  });

  it('random bytes at the admin port', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async (u) => {
        await exchange(server.adminPort, Buffer.from(u));
      }),
      { numRuns: 100 },
    );
    await expectBothAnswer();
  });

  it('random HTTP/2 frames at the gRPC port', async () => {
    const frame = fc
      .tuple(
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 9 }),
        fc.uint8Array({ maxLength: 64 }),
      )
      .map(([type, flags, stream, payload]) => h2Frame(type, flags, stream, payload));
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { maxLength: 12 }), fc.boolean(), async (frames, preface) => {
        await exchange(server.grpcPort, Buffer.concat([preface ? H2_PREFACE : Buffer.alloc(0), ...frames]));
      }),
      { numRuns: 100 },
    );
    await expectBothAnswer();
  });

  it('random bytes at the gRPC port', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async (u) => {
        await exchange(server.grpcPort, Buffer.concat([H2_PREFACE, Buffer.from(u)]));
      }),
      { numRuns: 100 },
    );
    await expectBothAnswer();
    // Nothing reached the process-level handlers: every fault above was answered where it happened.
    const text = await server.metricsText();
    expect(metricValue(text, 'authz_process_faults_total{kind="uncaught_exception"}')).toBe(0);
    expect(metricValue(text, 'authz_process_faults_total{kind="unhandled_rejection"}')).toBe(0);
  });
});
