/**
 * What the safety controls cost on the answer: the real server on loopback,
 * a real gRPC client, the example mesh, and the same request mix per
 * scenario. Reports client-side latency (p50/p99), throughput, and the
 * handler's own time from authz_check_duration_seconds (which ends when the
 * answer is handed to grpc-js, so after-reply shadow work is not in it).
 *
 *   npm run build && node dist/bench/safety-bench.js [requests] [concurrency]
 */
import * as grpc from '@grpc/grpc-js';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compilePolicyDirectory } from '../bundle/load-directory.js';
import { loadConfig } from '../config/load-config.js';
import { authorizationService } from '../envoy/protos.js';
import { simpleRequestToCheckRequest } from '../envoy/simple-request.js';
import type { WireCheckRequest } from '../envoy/wire-types.js';
import { createLogger } from '../observability/logger.js';
import { startAuthzServer } from '../server/authz-server.js';

const EXAMPLE = fileURLToPath(new URL('../../policies/', import.meta.url));
const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
const SHADOW_POLICY = '@id("candidate") @shadow\nforbid(principal, action == Action::"POST", resource == Service::"orders") when { context.path like "/orders/*/cancel" };\n';

/** A mix like a storefront's: mostly reads, some writes, some anonymous (rate-limited) traffic. */
const REQUESTS: WireCheckRequest[] = [
  simpleRequestToCheckRequest({ method: 'GET', path: '/orders/17', host: 'orders', principal: FRONTEND, sourceIp: '10.0.0.7' }),
  simpleRequestToCheckRequest({ method: 'POST', path: '/orders/17/cancel', host: 'orders', principal: FRONTEND, sourceIp: '10.0.0.7' }),
  simpleRequestToCheckRequest({ method: 'GET', path: '/public/logo.png', host: 'frontend', sourceIp: '203.0.113.5' }),
  simpleRequestToCheckRequest({ method: 'GET', path: '/payments/9/status', host: 'payments', principal: FRONTEND, sourceIp: '10.0.0.7' }),
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
  { name: 'shadow version, after-reply, 10% sampled', bundleYaml: NO_LIMITS, shadowVersion: true, flags: { shadowSampleRate: 0.1 } },
];

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function run(s: Scenario, total: number, concurrency: number): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'authz-bench-'));
  cpSync(EXAMPLE, dir, { recursive: true });
  if (s.bundleYaml) writeFileSync(path.join(dir, 'bundle.yaml'), s.bundleYaml);
  if (s.shadowPolicy) writeFileSync(path.join(dir, 'candidate.cedar'), SHADOW_POLICY);
  const config = loadConfig({ flags: { policies: dir, listen: '127.0.0.1:0', admin: '127.0.0.1:0', ...s.flags }, env: {} });
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

async function handlerSeconds(registry: { getSingleMetricAsString(name: string): Promise<string> }): Promise<{ sum: number; count: number }> {
  const text = await registry.getSingleMetricAsString('authz_check_duration_seconds');
  const value = (name: string) => Number(/\s(\S+)$/.exec(text.split('\n').find((l) => l.startsWith(name)) ?? ' 0')![1]);
  return { sum: value('authz_check_duration_seconds_sum'), count: value('authz_check_duration_seconds_count') };
}

async function main(): Promise<void> {
  const total = Number(process.argv[2] ?? 20_000);
  const concurrency = Number(process.argv[3] ?? 16);
  process.stdout.write(`${total} checks per scenario, ${concurrency} in flight, node ${process.version}\n`);
  const only = process.argv[4];
  for (const s of SCENARIOS) if (!only || s.name.includes(only)) process.stdout.write((await run(s, total, concurrency)) + '\n');
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
