/**
 * What the safety controls cost on the answer: the real server on loopback,
 * a real gRPC client, the example mesh, and the same request mix per
 * scenario. Reports client-side latency (p50/p99), throughput, and the
 * handler's own time from authz_check_duration_seconds (which ends when the
 * answer is handed to grpc-js, so after-reply shadow work is not in it).
 *
 *   npm run build && node dist/bench/safety-bench.js grpc [requests] [concurrency] [scenario]
 *
 * and, closer to the metal and steadier on a shared machine, the Check
 * handler alone (no gRPC), scenarios interleaved round by round, reporting
 * the median per-check cost of the answer (synchronous part) and of all the
 * work including after-reply shadow evaluations:
 *
 *   node dist/bench/safety-bench.js handler [rounds] [checks-per-round]
 *
 * a burst of anonymous storefront checks from one client address against a
 * running server, counting the answers (to watch rate limits and modes):
 *
 *   node dist/bench/safety-bench.js burst HOST:PORT [requests] [client-ip]
 *
 * and the rate limit bucket store's memory bound (run with --expose-gc):
 *
 *   node --expose-gc dist/bench/safety-bench.js buckets [distinct-keys] [max-keys]
 */
import * as grpc from '@grpc/grpc-js';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compilePolicyDirectory } from '../src/bundle/format/compile-policy-directory.js';
import { loadConfig } from '../src/config/load-config.js';
import * as protoLoader from '@grpc/proto-loader';
import { authorizationService, PROTO_DIR, PROTO_LOADER_OPTIONS } from '../src/envoy/protos.js';
import { simpleRequestToCheckRequest } from '../src/envoy/simple-request.js';
import type { WireCheckRequest, WireCheckResponse } from '../src/envoy/wire-types.js';
import { createLogger } from '../src/observability/logger.js';
import { startAuthzServer } from '../src/server/authz-server.js';
import { CheckHandler } from '../src/server/check-handler.js';
import { ActivePolicySet } from '../src/bundle/active-policy-set.js';
import { AuthzMetrics } from '../src/observability/metrics.js';
import { DecisionLog } from '../src/observability/decision-log.js';
import { parseBundleSettings } from '../src/bundle/bundle-settings.js';
import { ANONYMOUS } from '../src/context/principal.js';
import { checkRequestToInput } from '../src/envoy/check-request.js';
import { BucketStore } from '../src/ratelimit/bucket-store.js';
import { RateLimiter } from '../src/ratelimit/rate-limiter.js';

const EXAMPLE = fileURLToPath(new URL('../policies/', import.meta.url));
const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
const SHADOW_POLICY =
  '@id("candidate") @shadow\nforbid(principal, action == Action::"POST", resource == Service::"orders") when { context.path like "/orders/*/cancel" };\n';

/** A mix like a storefront's: mostly reads, some writes, some anonymous (rate-limited) traffic. */
const REQUESTS: WireCheckRequest[] = [
  simpleRequestToCheckRequest({
    method: 'GET',
    path: '/orders/17',
    host: 'orders',
    principal: FRONTEND,
    sourceIp: '10.0.0.7',
  }),
  simpleRequestToCheckRequest({
    method: 'POST',
    path: '/orders/17/cancel',
    host: 'orders',
    principal: FRONTEND,
    sourceIp: '10.0.0.7',
  }),
  simpleRequestToCheckRequest({ method: 'GET', path: '/public/logo.png', host: 'frontend', sourceIp: '203.0.113.5' }),
  simpleRequestToCheckRequest({
    method: 'GET',
    path: '/payments/9/status',
    host: 'payments',
    principal: FRONTEND,
    sourceIp: '10.0.0.7',
  }),
];

interface Scenario {
  name: string;
  flags?: Record<string, unknown>;
  shadowPolicy?: boolean;
  shadowVersion?: boolean;
  /** bundle.yaml written into the policy copy. */
  bundleYaml?: string;
}

const NO_LIMITS = 'mode: normal\n';
/** Two rules every request meets, with limits no request reaches: the limiter's cost without its 429s. */
const HIGH_LIMITS = `mode: normal
rateLimits:
  - { name: anonymous-per-ip, match: { principalType: Anonymous }, key: source.ip, normal: { requestsPerSecond: 1000000, burst: 1000000 } }
  - { name: per-principal, key: principal, normal: { requestsPerSecond: 1000000, burst: 1000000 } }
`;
const SCENARIOS: Scenario[] = [
  { name: 'baseline (no rate limits, no shadow)', bundleYaml: NO_LIMITS },
  { name: 'rate limits (2 rules, never exceeded)', bundleYaml: HIGH_LIMITS },
  { name: '@shadow policy, after-reply', bundleYaml: NO_LIMITS, shadowPolicy: true },
  { name: '@shadow policy, inline', bundleYaml: NO_LIMITS, shadowPolicy: true, flags: { shadowEvaluation: 'inline' } },
  { name: 'shadow version, after-reply', bundleYaml: NO_LIMITS, shadowVersion: true },
  { name: 'shadow version, inline', bundleYaml: NO_LIMITS, shadowVersion: true, flags: { shadowEvaluation: 'inline' } },
  {
    name: 'shadow version, after-reply, 10% sampled',
    bundleYaml: NO_LIMITS,
    shadowVersion: true,
    flags: { shadowSampleRate: 0.1 },
  },
];

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function run(s: Scenario, total: number, concurrency: number): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'authz-bench-'));
  cpSync(EXAMPLE, dir, { recursive: true });
  if (s.bundleYaml) writeFileSync(path.join(dir, 'bundle.yaml'), s.bundleYaml);
  if (s.shadowPolicy) writeFileSync(path.join(dir, 'candidate.cedar'), SHADOW_POLICY);
  const config = loadConfig({
    flags: { policies: dir, listen: '127.0.0.1:0', admin: '127.0.0.1:0', ...s.flags },
    env: {},
  });
  // Decision lines are written as in production (async pino), to /dev/null.
  const server = await startAuthzServer(config, { logger: createLogger({ level: 'info', destination: '/dev/null' }) });
  if (s.shadowVersion) {
    const candidate = mkdtempSync(path.join(tmpdir(), 'authz-bench-v2-'));
    cpSync(dir, candidate, { recursive: true });
    writeFileSync(path.join(candidate, 'candidate.cedar'), SHADOW_POLICY.replace('@shadow\n', ''));
    server.shadowVersion.swap(await compilePolicyDirectory(candidate));
    rmSync(candidate, { recursive: true, force: true });
  }
  const Client = authorizationService();
  const client = new Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  const check = (req: WireCheckRequest) =>
    new Promise<void>((resolve, reject) => client.Check(req, (err: Error | null) => (err ? reject(err) : resolve())));

  for (let i = 0; i < 2000; i++) await check(REQUESTS[i % REQUESTS.length]); // warm-up: JIT, connections
  const before = await handlerSeconds(server.metrics.registry);
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const t = performance.now();
        await check(REQUESTS[i % REQUESTS.length]);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const after = await handlerSeconds(server.metrics.registry);
  client.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  const handlerUs = ((after.sum - before.sum) / (after.count - before.count)) * 1e6;
  return `${s.name.padEnd(44)} ${String(Math.round(total / seconds)).padStart(7)} req/s   p50 ${percentile(latencies, 50).toFixed(3)} ms   p99 ${percentile(latencies, 99).toFixed(3)} ms   handler ${handlerUs.toFixed(1)} µs`;
}

async function handlerSeconds(registry: {
  getSingleMetricAsString(name: string): Promise<string>;
}): Promise<{ sum: number; count: number }> {
  const text = await registry.getSingleMetricAsString('authz_check_duration_seconds');
  const value = (name: string) => Number(/\s(\S+)$/.exec(text.split('\n').find((l) => l.startsWith(name)) ?? ' 0')![1]);
  return { sum: value('authz_check_duration_seconds_sum'), count: value('authz_check_duration_seconds_count') };
}

/** One scenario's handler, built like the server builds it (metrics, decision log to /dev/null). */
async function handlerFor(s: Scenario): Promise<{ handler: CheckHandler; cleanup: () => void }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'authz-bench-'));
  cpSync(EXAMPLE, dir, { recursive: true });
  if (s.bundleYaml) writeFileSync(path.join(dir, 'bundle.yaml'), s.bundleYaml);
  if (s.shadowPolicy) writeFileSync(path.join(dir, 'candidate.cedar'), SHADOW_POLICY);
  const config = loadConfig({ flags: { policies: dir, ...s.flags }, env: {} });
  const policySet = new ActivePolicySet();
  policySet.swap(await compilePolicyDirectory(dir));
  const shadowVersion = new ActivePolicySet();
  if (s.shadowVersion) {
    writeFileSync(path.join(dir, 'candidate.cedar'), SHADOW_POLICY.replace('@shadow\n', ''));
    shadowVersion.swap(await compilePolicyDirectory(dir));
  }
  const logger = createLogger({ level: 'info', destination: '/dev/null' });
  const handler = new CheckHandler({
    policySet,
    shadowVersion,
    metrics: new AuthzMetrics(false),
    decisionLog: new DecisionLog(logger, config.decisionLogHeaders),
    logger,
    safety: {
      failMode: config.failMode,
      dryRun: config.dryRun,
      decisionTimeoutMs: config.decisionTimeout,
      shadowEvaluation: config.shadowEvaluation,
      shadowSampleRate: config.shadowSampleRate,
      rateLimitMaxKeys: config.rateLimitMaxKeys,
    },
  });
  return { handler, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const drain = async (): Promise<void> => {
  // Two turns: the after-reply jobs queued by the batch, then anything they queued.
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
};

async function handlerBench(rounds: number, perRound: number): Promise<void> {
  process.stdout.write(
    `Check handler alone: ${rounds} rounds x ${perRound} checks per scenario, interleaved; median µs per check, node ${process.version}\n`,
  );
  const built = await Promise.all(SCENARIOS.map(handlerFor));
  const answer: number[][] = SCENARIOS.map(() => []);
  const total: number[][] = SCENARIOS.map(() => []);
  for (let round = 0; round < rounds + 1; round++) {
    for (let i = 0; i < built.length; i++) {
      const { handler } = built[i];
      const t0 = performance.now();
      for (let n = 0; n < perRound; n++) handler.handle(REQUESTS[n % REQUESTS.length]);
      const t1 = performance.now();
      await drain();
      const t2 = performance.now();
      if (round === 0) continue; // warm-up
      answer[i].push(((t1 - t0) * 1000) / perRound);
      total[i].push(((t2 - t0) * 1000) / perRound);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (let i = 0; i < SCENARIOS.length; i++) {
    process.stdout.write(
      `${SCENARIOS[i].name.padEnd(44)} answer ${median(answer[i]).toFixed(1).padStart(6)} µs   all work ${median(total[i]).toFixed(1).padStart(6)} µs\n`,
    );
  }
  for (const b of built) b.cleanup();
}

/** A flood of distinct client addresses against one rule whose buckets never refill in time. */
function bucketBench(distinct: number, maxKeys: number): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  const settings = parseBundleSettings(
    'rateLimits: [{ name: anonymous-per-ip, key: source.ip, normal: { requestsPerSecond: 0.001, burst: 5 } }]',
  );
  let evicted = 0;
  const limiter = new RateLimiter(new BucketStore(maxKeys, () => evicted++));
  const input = checkRequestToInputOrThrow(REQUESTS[2]);
  gc();
  const before = process.memoryUsage().heapUsed;
  const started = performance.now();
  for (let i = 0; i < distinct; i++) {
    const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    limiter.check(settings, { ...input, source: { ...input.source, ip } }, ANONYMOUS, Date.now());
  }
  const us = ((performance.now() - started) * 1000) / distinct;
  gc();
  const bytes = process.memoryUsage().heapUsed - before;
  process.stdout.write(
    `${distinct} distinct client IPs, --rate-limit-max-keys ${maxKeys}: ${limiter.buckets.size} buckets held, ${evicted} evicted early, ` +
      `heap +${(bytes / 1e6).toFixed(1)} MB (${Math.round(bytes / limiter.buckets.size)} B per bucket), ${us.toFixed(1)} µs per check\n`,
  );
}

function checkRequestToInputOrThrow(req: WireCheckRequest) {
  const r = checkRequestToInput(req);
  if (!r.ok) throw new Error(r.message);
  return r.input;
}

/** An Authorization client that decodes enums as numbers, so HTTP statuses read as Envoy reads them. */
function numericAuthorizationClient(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync(path.join(PROTO_DIR, 'envoy/service/auth/v3/external_auth.proto'), {
    ...PROTO_LOADER_OPTIONS,
    enums: Number,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } };
  };
  return pkg.envoy.service.auth.v3.Authorization;
}

async function burst(address: string, total: number, ip: string): Promise<void> {
  const Client = numericAuthorizationClient();
  const client = new Client(address, grpc.credentials.createInsecure());
  const req = simpleRequestToCheckRequest({ method: 'GET', path: '/products', host: 'frontend', sourceIp: ip });
  const counts: Record<string, number> = {};
  let limitHeaders = '';
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    const res = await new Promise<WireCheckResponse>((resolve, reject) =>
      client.Check(req, (err: Error | null, r: WireCheckResponse) => (err ? reject(err) : resolve(r))),
    );
    const status = res.status.code === 0 ? '200' : String(res.denied_response?.status.code);
    counts[status] = (counts[status] ?? 0) + 1;
    if (status === '429')
      limitHeaders = (res.denied_response?.headers ?? [])
        .filter((h) => h.header.key !== 'content-type')
        .map((h) => `${h.header.key}: ${h.header.value}`)
        .join(', ');
  }
  client.close();
  const ms = Math.round(performance.now() - started);
  process.stdout.write(
    `${total} checks from ${ip} in ${ms} ms: ${Object.entries(counts)
      .map(([k, v]) => `${v} x ${k}`)
      .join(', ')}${limitHeaders ? ` (429 with ${limitHeaders})` : ''}\n`,
  );
}

async function main(): Promise<void> {
  const mode = process.argv[2] ?? 'handler';
  if (mode === 'burst')
    return burst(
      process.argv[3] ?? '127.0.0.1:9191',
      Number(process.argv[4] ?? 200),
      process.argv[5] ?? '198.51.100.23',
    );
  if (mode === 'buckets') return bucketBench(Number(process.argv[3] ?? 250_000), Number(process.argv[4] ?? 100_000));
  if (mode === 'handler') return handlerBench(Number(process.argv[3] ?? 15), Number(process.argv[4] ?? 400));
  const total = Number(process.argv[3] ?? 20_000);
  const concurrency = Number(process.argv[4] ?? 16);
  process.stdout.write(`${total} checks per scenario, ${concurrency} in flight, node ${process.version}\n`);
  const only = process.argv[5];
  for (const s of SCENARIOS)
    if (!only || s.name.includes(only)) process.stdout.write((await run(s, total, concurrency)) + '\n');
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
