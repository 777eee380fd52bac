/**
 * A real `nats-server -js` on a free loopback port, with its JetStream store
 * in a temp dir. It can be stopped and started again on the same port and
 * store, to play a NATS outage and restart.
 *
 * Debian's `nats-server` package provides the binary (.ci/run installs it).
 * Where it is absent the NATS tests skip with a message, except under CI,
 * where they must run: there a missing binary fails them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

const BINARY = process.env.NATS_SERVER_BIN ?? 'nats-server';
const READY_TIMEOUT_MS = 15_000;

export const natsServerAvailable: boolean = spawnSync(BINARY, ['--version'], { stdio: 'ignore' }).status === 0;

/** Call at the top of a NATS test file: says why it skips, or fails under CI. */
export function natsSkipReason(): string | undefined {
  if (natsServerAvailable) return undefined;
  if (process.env.CI)
    throw new Error(`${BINARY} is not installed; .ci/run installs it (apt-get install -y nats-server)`);
  const reason = `${BINARY} not found: NATS tests skipped (apt-get install -y nats-server)`;
  process.stderr.write(`${reason}\n`);
  return reason;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export class TestNatsServer {
  private proc: ChildProcess | undefined;

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static async start(): Promise<TestNatsServer> {
    const server = new TestNatsServer(mkdtempSync(path.join(tmpdir(), 'authz-nats-')), await freePort());
    await server.up();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get isUp(): boolean {
    return this.proc !== undefined;
  }

  /** Start (again) on the same port and JetStream store. */
  async up(): Promise<void> {
    const proc = spawn(
      BINARY,
      ['-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', this.dir, '--http_port', '0'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.proc = proc;
    await new Promise<void>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(
        () => reject(new Error(`nats-server did not start within ${READY_TIMEOUT_MS}ms:\n${output}`)),
        READY_TIMEOUT_MS,
      );
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Server is ready')) {
          clearTimeout(timer);
          proc.stderr?.off('data', onData);
          proc.stdout?.off('data', onData);
          resolve();
        }
      };
      proc.stderr?.on('data', onData);
      proc.stdout?.on('data', onData);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with ${code}:\n${output}`));
      });
    });
    // Keep draining its output so a chatty server never blocks on a full pipe.
    proc.stderr?.resume();
    proc.stdout?.resume();
  }

  async down(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (!proc || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
      setTimeout(() => proc.kill('SIGKILL'), 5_000).unref();
    });
  }

  async close(): Promise<void> {
    await this.down();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
