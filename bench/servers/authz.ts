/**
 * Our server, started exactly as `authz serve` starts it (same config loading,
 * same composition root), inside a process that also reports memory and
 * event-loop stalls to the benchmark.
 * Usage: authz.ts <flags as JSON>
 */
import { loadConfig } from '../../src/config/load-config.js';
import { startAuthzServer } from '../../src/server/authz-server.js';
import { serveChild } from './child.js';

const flags = JSON.parse(process.argv[2] ?? '{}') as Record<string, unknown>;
const config = loadConfig({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', ...flags }, env: {} });
const server = await startAuthzServer(config);
serveChild({ port: server.grpcPort, adminPort: server.adminPort, info: { version: server.policySet.current?.version, policies: server.policySet.current?.policies.size } }, () => server.close());
