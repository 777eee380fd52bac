// One build's cost of a cached Check, in one process, without a transport: the
// CheckHandler wired as the server wires it (decision log to a file with
// headers, metrics, a bundle rate limit that matches, IP lists, trusted hops,
// a JWT issuer, the decision cache), fed the benchmark's repeated request as
// bytes through our CheckRequest decoder. Started by bench/check-cost.ts.
// Usage: node bench/servers/check-cost.mjs '{"dist": "/abs/dist", "policies": "/abs/bundle", "work": "/abs/dir", "checks": N, "frame": "<base64 CheckRequest>"}'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const args = JSON.parse(process.argv[2]);
const load = (p) => import(pathToFileURL(path.join(args.dist, p)).href);
const { loadConfig } = await load('config/load-config.js');
const { ActivePolicySet } = await load('bundle/active-policy-set.js');
const { EngineResultCache } = await load('cache/decision-cache.js');
const { requestEnricherFromConfig } = await load('wiring/context-from-config.js');
const { safetyOptionsFromConfig, bodyLimitsFromConfig } = await load('wiring/pipeline-settings.js');
const { EventLoopLoad } = await load('context/server-load.js');
const { DecisionLog } = await load('observability/decision-log.js');
const { createLogger, flushLogger } = await load('observability/logger.js');
const { AuthzMetrics } = await load('observability/metrics.js');
const { redactedHeaderNames } = await load('observability/redaction.js');
const { CheckHandler } = await load('server/check-handler.js');
const { decodeCheckRequest } = await load('envoy/check-request-decoder.js');
const { DEFAULT_CHECK_REQUEST_LIMITS } = await load('envoy/check-request-limits.js');
const { filesToPolicySetSource } = await load('bundle/format/bundle-files.js');

// A JWT issuer with a local key set: the identity stage runs (the request carries no token).
const { generateKeyPair, exportJWK } = await import('jose');
const { publicKey } = await generateKeyPair('ES256');
const jwksPath = path.join(args.work, 'jwks.json');
writeFileSync(jwksPath, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] }));

const config = loadConfig({
  flags: {
    policies: args.policies,
    logDestination: path.join(args.work, `decisions-${process.pid}.log`),
    trustedHops: 1,
    riskHeader: 'x-risk-score',
    jwtIssuer: 'https://issuer.example',
    jwtAudience: 'bench',
    jwks: jwksPath,
  },
  env: {},
});
const logger = createLogger({ level: config.logLevel, destination: config.logDestination });
const metrics = new AuthzMetrics();
const policySet = new ActivePolicySet({ engine: config.engine });
const decisionLog = new DecisionLog(logger, {
  withHeaders: config.decisionLogHeaders,
  redactHeaders: redactedHeaderNames(config),
  maxString: config.decisionLogMaxString,
  trustedHops: config.trustedHops,
});
const loadSource = new EventLoopLoad(config.loadWindow);
const enricher = await requestEnricherFromConfig(config, loadSource, {});
await enricher.start();
const cache = new EngineResultCache(config.decisionCacheEntries, config.decisionCacheTtl);
const files = new Map();
for (const f of readdirSync(args.policies, { recursive: true, withFileTypes: true }))
  if (f.isFile()) {
    const full = path.join(f.parentPath ?? f.path, f.name);
    files.set(path.relative(args.policies, full), readFileSync(full));
  }
const activated = policySet.activateSource(filesToPolicySetSource(files, 'check-cost'));
if (!activated.ok) throw activated.error;
const handler = new CheckHandler({
  policySet,
  metrics,
  decisionLog,
  logger,
  enricher,
  safety: safetyOptionsFromConfig(config),
  cache,
  fleet: { servers: () => 1 },
  bodyLimits: bodyLimitsFromConfig(config),
});
const frame = Buffer.from(args.frame, 'base64');
const check = () => {
  // The decoder's refusals are values the pipeline answers (refusalOf), as on the gRPC transports.
  return handler.handle(decodeCheckRequest(frame, DEFAULT_CHECK_REQUEST_LIMITS), Date.now() + 1000);
};
const first = check();
const batch = 64;
const run = async (n) => {
  for (let i = 0; i < n; i += batch) {
    for (let j = 0; j < batch; j++) check();
    // A turn of the loop per batch, as a server gets between bursts: the log's writes and timers run.
    await new Promise((r) => setImmediate(r));
  }
};
await run(20_000);
// Garbage collections during the measured part: their count and pause time per check (what allocation costs).
const { PerformanceObserver } = await import('node:perf_hooks');
const gc = { count: 0, ms: 0 };
const observer = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gc.count++;
    gc.ms += e.duration;
  }
});
observer.observe({ entryTypes: ['gc'] });
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await run(args.checks);
const wall = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
await new Promise((r) => setImmediate(r));
observer.disconnect();
await flushLogger(logger);
loadSource.stop();
enricher.stop();
process.send({
  cpuUs: (cpu.user + cpu.system) / args.checks,
  wallUs: (wall * 1000) / args.checks,
  gcPer1000: gc.count / (args.checks / 1000),
  gcUs: (gc.ms * 1000) / args.checks,
  answer: first,
  cache: (await metrics.cacheLookups.get()).values.map((v) => `${v.labels.result}=${v.value}`).join(' '),
});
process.exit(0);
