// Our server, started exactly as `authz serve` starts it (same config loading,
// same composition root, compiled JavaScript from dist/), inside a process that
// also reports memory and event-loop stalls to the benchmark.
// Usage: node bench/servers/authz.mjs '<flags as JSON>'
import { loadConfig } from '../../dist/config/load-config.js';
import { startAuthzServer } from '../../dist/server/authz-server.js';
import { serveChild } from './child.mjs';

const flags = JSON.parse(process.argv[2] ?? '{}');
const config = loadConfig({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', ...flags }, env: {} });
const server = await startAuthzServer(config);
serveChild(
  { port: server.grpcPort, adminPort: server.adminPort, info: { version: server.policySet.current?.version } },
  () => server.close(),
);
