/**
 * The decision log is written asynchronously and in batches (logger.ts), so
 * lines sit in a buffer for a moment. None may be lost when the process ends:
 * `authz serve` stopped with SIGTERM has written every decision it answered,
 * and a process that exits on a fatal error has written every line it logged.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { connectAuthz } from '../support/grpc-client.js';
import { copyExamplePolicies, removeDir } from '../support/policy-dir.js';
import { eventually } from '../support/wait.js';
import { FRONTEND, istioRequest } from '../support/requests.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

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

const decisionIds = (logFile: string): string[] =>
  readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"msg":"decision"'))
    .map((l) => (JSON.parse(l) as { decision_id: string }).decision_id);

describe('decision log at the end of the process', () => {
  it('SIGTERM: every decision answered is in the log file', async () => {
    const policies = copyExamplePolicies();
    const work = mkdtempSync(path.join(tmpdir(), 'authz-log-end-'));
    dirs.push(policies, work);
    const logFile = path.join(work, 'authz.log');
    const [grpcPort, adminPort] = [await freePort(), await freePort()];
    const proc = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'serve',
        '--policies',
        policies,
        '--listen',
        `127.0.0.1:${grpcPort}`,
        '--admin',
        `127.0.0.1:${adminPort}`,
        '--log-destination',
        logFile,
      ],
      { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    try {
      await eventually(
        async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined))?.status === 200,
        60_000,
        100,
      );
      const client = connectAuthz(grpcPort, grpc.credentials.createInsecure());
      const answered: string[] = [];
      // Fewer bytes than one buffer (LOG_BUFFER_BYTES) and faster than its timer: held, not yet written, when the signal comes.
      for (let i = 0; i < 5; i++) {
        const res = await client.check(istioRequest({ principal: FRONTEND, path: `/orders/${i}`, host: 'orders' }));
        answered.push(res.dynamic_metadata!.fields!.decision_id.stringValue!);
      }
      client.close();
      proc.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(decisionIds(logFile)).toEqual(answered);
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
  }, 90_000);

  it('a process that exits on a fatal error has written every line it logged', () => {
    const work = mkdtempSync(path.join(tmpdir(), 'authz-log-fatal-'));
    dirs.push(work);
    const logFile = path.join(work, 'fatal.log');
    const script = `
      const { createLogger } = await import(${JSON.stringify(path.join(ROOT, 'src/observability/logger.ts'))});
      const logger = createLogger({ level: 'info', destination: ${JSON.stringify(logFile)} });
      for (let i = 0; i < 3; i++) logger.info({ decision_id: 'd' + i }, 'decision');
      logger.fatal('cannot go on');
      process.exit(1);`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(decisionIds(logFile)).toEqual(['d0', 'd1', 'd2']);
    expect(readFileSync(logFile, 'utf8')).toContain('"msg":"cannot go on"');
  });
});
