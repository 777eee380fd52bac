/**
 * Starting the real server for a test: on ephemeral loopback ports, from the
 * same config loader as `authz serve`, with a client per server and one place
 * that closes everything a test file started.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/load-config.js';
import { createLogger } from '../../src/observability/logger.js';
import { startAuthzServer, type RunningServer } from '../../src/server/authz-server.js';
import { metricsText } from './admin-http.js';
import { connectAuthz, type AuthzClient } from './grpc-client.js';
import { TEST_BUCKET, type TestS3Store } from './s3rver-store.js';

/** Ephemeral loopback ports for gRPC and admin HTTP. */
const LOOPBACK_FLAGS = { listen: '127.0.0.1:0', admin: '127.0.0.1:0' };

export const TEST_POLL_INTERVAL_MS = 200;

export interface TestServer extends RunningServer {
  logFile: string;
  logLines(): Record<string, unknown>[];
  metricsText(): Promise<string>;
  admin(path: string): Promise<{ status: number; body: string }>;
}

/** The server with its log written synchronously to a file the test reads back (decision log lines). */
export async function startTestServer(flags: Record<string, unknown>): Promise<TestServer> {
  const logFile = path.join(mkdtempSync(path.join(tmpdir(), 'authz-log-')), 'authz.log');
  const config = loadConfig({ flags: { ...LOOPBACK_FLAGS, logLevel: 'info', ...flags }, env: {} });
  // Synchronous writes so a test can read the decision log right after the answer.
  const logger = createLogger({ level: config.logLevel, destination: logFile, sync: true });
  const server = await startAuthzServer(config, { logger });
  const admin = async (p: string) => {
    const res = await fetch(`http://127.0.0.1:${server.adminPort}${p}`);
    return { status: res.status, body: await res.text() };
  };
  return Object.assign(server, {
    logFile,
    logLines: () =>
      existsSync(logFile)
        ? readFileSync(logFile, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Record<string, unknown>)
        : [],
    metricsText: () => metricsText(server.adminPort),
    admin,
  });
}

/** The server with logging off, e.g. `startQuietServer({ policies: dir })`. */
export function startQuietServer(flags: Record<string, unknown>): Promise<RunningServer> {
  return startAuthzServer(loadConfig({ flags: { ...LOOPBACK_FLAGS, logLevel: 'silent', ...flags }, env: {} }));
}

/** The server on the S3 source against a TestS3Store, polling every TEST_POLL_INTERVAL_MS unless flags say otherwise. */
export function startS3Server(
  s3: TestS3Store,
  bundle: string,
  flags: Record<string, unknown> = {},
): Promise<RunningServer> {
  return startQuietServer({
    s3Endpoint: s3.endpoint,
    bucket: TEST_BUCKET,
    bundle,
    pollInterval: `${TEST_POLL_INTERVAL_MS}ms`,
    ...flags,
  });
}

/** A started server and a client connected to it. */
export interface ServedServer {
  server: RunningServer;
  client: AuthzClient;
}

/** The servers (and extra clients) one test file started; `closeAll()` in afterAll closes what is still open. */
export class TestServers {
  private readonly open: ServedServer[] = [];
  private readonly extraClients: AuthzClient[] = [];

  /** Waits for the server to start and connects a client to it. */
  async add(starting: Promise<RunningServer>): Promise<ServedServer> {
    const server = await starting;
    const entry = { server, client: connectAuthz(server.grpcPort) };
    this.open.push(entry);
    return entry;
  }

  /** One more client of a started server (to keep several channels busy), closed with the rest. */
  client(server: RunningServer): AuthzClient {
    const client = connectAuthz(server.grpcPort);
    this.extraClients.push(client);
    return client;
  }

  /** Closes one server before the file ends (a restart, a fleet member leaving). */
  async stop(entry: ServedServer): Promise<void> {
    this.open.splice(this.open.indexOf(entry), 1);
    entry.client.close();
    await entry.server.close();
  }

  async closeAll(): Promise<void> {
    for (const client of this.extraClients.splice(0)) client.close();
    const open = this.open.splice(0);
    for (const { client } of open) client.close();
    await Promise.all(open.map(({ server }) => server.close()));
  }
}
