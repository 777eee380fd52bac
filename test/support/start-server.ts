/** Start the real server on ephemeral ports with a log file we can read back. */
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/load-config.js';
import { startAuthzServer, type RunningServer } from '../../src/server/authz-server.js';
import { createLogger } from '../../src/observability/logger.js';

export interface TestServer extends RunningServer {
  logFile: string;
  logLines(): Record<string, unknown>[];
  metricsText(): Promise<string>;
  admin(path: string): Promise<{ status: number; body: string }>;
}

export async function startTestServer(flags: Record<string, unknown>): Promise<TestServer> {
  const logFile = path.join(mkdtempSync(path.join(tmpdir(), 'authz-log-')), 'authz.log');
  const config = loadConfig({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', logLevel: 'info', ...flags }, env: {} });
  // Synchronous writes so a test can read the decision log right after the answer.
  const logger = createLogger({ level: config.logLevel, destination: logFile, sync: true });
  const server = await startAuthzServer(config, { logger });
  const admin = async (p: string) => {
    const res = await fetch(`http://127.0.0.1:${server.adminPort}${p}`);
    return { status: res.status, body: await res.text() };
  };
  return Object.assign(server, {
    logFile,
    logLines: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : []),
    metricsText: async () => (await admin('/metrics')).body,
    admin,
  });
}

/** Value of a Prometheus sample, e.g. metricValue(text, 'authz_decisions_total{decision="allow",reason="allowed"}'). */
export function metricValue(text: string, sample: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(sample + ' ')) return Number(line.slice(sample.length + 1));
  }
  return 0;
}
