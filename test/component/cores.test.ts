/**
 * --cores 2: the real CLI as a process tree (primary + two workers sharing the
 * gRPC port). Connections are spread over the workers, both answer, and the
 * primary's admin port speaks for all of them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAuthz, type AuthzClient } from '../support/grpc-client.js';
import { copyExamplePolicies, removeDir } from '../support/policy-dir.js';
import { eventually } from '../support/wait.js';
import { FRONTEND, istioRequest } from '../support/requests.js';
import { metricValue } from '../support/admin-http.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

let proc: ChildProcess;
let dir: string;
let logFile: string;
let grpcPort: number;
let adminPort: number;
const clients: AuthzClient[] = [];
const admin = async (p: string) => {
  const res = await fetch(`http://127.0.0.1:${adminPort}${p}`);
  return { status: res.status, body: await res.text() };
};

beforeAll(async () => {
  dir = copyExamplePolicies();
  logFile = path.join(mkdtempSync(path.join(tmpdir(), 'authz-cores-')), 'authz.log');
  [grpcPort, adminPort] = [await freePort(), await freePort()];
  proc = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'serve',
      '--cores',
      '2',
      '--policies',
      dir,
      '--listen',
      `127.0.0.1:${grpcPort}`,
      '--admin',
      `127.0.0.1:${adminPort}`,
      '--log-destination',
      logFile,
    ],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  await eventually(async () => (await admin('/readyz')).status === 200, 60_000, 100);
}, 90_000);

afterAll(async () => {
  for (const c of clients) c.close();
  if (proc && proc.exitCode === null) {
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
  }
  if (dir) removeDir(dir);
}, 30_000);

describe('--cores 2', () => {
  it('both workers answer, each over the connections it was given', async () => {
    // A pool of its own per client, so each opens its own connection.
    for (let i = 0; i < 4; i++)
      clients.push(connectAuthz(grpcPort, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
    for (const c of clients) {
      for (let i = 0; i < 3; i++) {
        const res = await c.check(istioRequest({ principal: FRONTEND, path: '/orders/1', host: 'orders' }));
        expect(res.status.code).toBe(0);
      }
    }
    await eventually(() => {
      if (!existsSync(logFile)) return false;
      const workers = new Set(
        readFileSync(logFile, 'utf8')
          .split('\n')
          .filter((l) => l.includes('"msg":"decision"'))
          .map((l) => (JSON.parse(l) as { worker: number }).worker),
      );
      return workers.size === 2;
    }, 10_000);
  });

  it('the primary reports every worker: readiness, bundle versions, summed metrics', async () => {
    const ready = JSON.parse((await admin('/readyz')).body);
    expect(ready).toMatchObject({ ready: true, workers: 2, workers_ready: 2 });
    const bundle = JSON.parse((await admin('/bundle')).body) as {
      workers: { slot: number; version: string; policies: number }[];
    };
    expect(bundle.workers.map((w) => w.slot)).toEqual([0, 1]);
    expect(new Set(bundle.workers.map((w) => w.version)).size).toBe(1);
    const metrics = (await admin('/metrics')).body;
    expect(metricValue(metrics, 'authz_decisions_total{decision="allow",reason="allowed"}')).toBe(12);
    expect(metricValue(metrics, 'authz_policies')).toBe(bundle.workers[0].policies);
  });

  it('a worker that dies is replaced', async () => {
    const workers = async () =>
      (JSON.parse((await admin('/bundle')).body) as { workers: { slot: number; pid: number }[] }).workers;
    const before = await workers();
    process.kill(before[0].pid, 'SIGKILL');
    await eventually(
      async () => {
        const now = await workers();
        return now.length === 2 && now[0].pid !== before[0].pid && now[1].pid === before[1].pid;
      },
      30_000,
      100,
    );
    await eventually(async () => (await admin('/readyz')).status === 200, 30_000, 100);
  }, 60_000);
});
