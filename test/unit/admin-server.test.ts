import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthzMetrics } from '../../src/observability/metrics.js';
import { AdminServer } from '../../src/server/admin-server.js';

const errors: unknown[] = [];
let admin: AdminServer;
let port: number;

beforeAll(async () => {
  admin = new AdminServer({
    metrics: new AuthzMetrics(false),
    isReady: () => true,
    readinessDetail: () => ({}),
    onError: (err) => errors.push(err),
  });
  admin.route('/throws', async () => {
    throw new Error('route bug');
  });
  admin.route('/unserialisable', async () => ({ status: 200, body: { n: 1n } }));
  admin.route('/bad-status', async () => ({ status: 42, body: 'x' }));
  port = await admin.listen('127.0.0.1', 0);
});

afterAll(() => admin.close());

function raw(request: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    socket.on('data', (d) => (answer += d.toString()));
    socket.on('close', () => resolve(answer));
    socket.on('error', () => resolve(answer));
    socket.end(request);
  });
}

describe('AdminServer answers every request', () => {
  const rows = [
    { name: 'a path the URL parser refuses', request: 'GET //[ HTTP/1.1\r\nHost: x\r\n\r\n', status: 400 },
    { name: 'a request line that is not HTTP', request: 'GARBAGE\r\n\r\n', status: 400 },
    { name: 'a route that throws', request: 'GET /throws HTTP/1.1\r\nHost: x\r\n\r\n', status: 500 },
    { name: 'a body JSON cannot write', request: 'GET /unserialisable HTTP/1.1\r\nHost: x\r\n\r\n', status: 500 },
    { name: 'a status Node refuses', request: 'GET /bad-status HTTP/1.1\r\nHost: x\r\n\r\n', status: 500 },
    { name: 'an unknown path', request: 'GET /nope HTTP/1.1\r\nHost: x\r\n\r\n', status: 404 },
  ];
  for (const row of rows) {
    it(`${row.name}: ${row.status}`, async () => {
      expect(await raw(row.request)).toMatch(new RegExp(`^HTTP/1\\.1 ${row.status} `));
    });
  }

  it('route failures reach onError (logged and counted by the server)', () => {
    expect(errors.map((e) => (e as Error).message)).toEqual(expect.arrayContaining(['route bug']));
    expect(errors.length).toBe(3);
  });
});
