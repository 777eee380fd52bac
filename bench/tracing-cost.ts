/**
 * What tracing costs per Check, in one process: the whole CheckHandler
 * (cache hit, decision log to a file) with tracing off, on with Envoy's trace
 * sampled (span recorded, batched, exported to an OTLP receiver on loopback),
 * and on with Envoy's trace not sampled. Alternating rounds, median per call.
 *
 *   npx tsx bench/tracing-cost.ts
 */
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ActivePolicySet } from '../src/bundle/active-policy-set.js';
import { EngineResultCache } from '../src/cache/decision-cache.js';
import type { EngineResult } from '../src/cedar/evaluate.js';
import { filesToPolicySetSource } from '../src/bundle/format/bundle-files.js';
import { DecisionLog } from '../src/observability/decision-log.js';
import { createLogger } from '../src/observability/logger.js';
import { AuthzMetrics } from '../src/observability/metrics.js';
import { Tracing } from '../src/observability/tracing.js';
import { CheckHandler } from '../src/server/check-handler.js';
import type { WireCheckRequest } from '../src/envoy/wire-types.js';
import { generateMeshBundle } from './generate-bundle.js';
import { checkRequest, REPEATED_SHAPE } from './requests.js';

const SERVICES = 100;
const ITERATIONS = 20_000;
const ROUNDS = 7;

function withHeader(req: WireCheckRequest, name: string, value: string): WireCheckRequest {
  const http = req.attributes!.request!.http!;
  return {
    ...req,
    attributes: {
      ...req.attributes,
      request: { ...req.attributes!.request, http: { ...http, headers: { ...http.headers, [name]: value } } },
    },
  };
}

async function main(): Promise<void> {
  let received = 0;
  const sink = createServer((req, res) => {
    req.on('data', () => undefined);
    req.on('end', () => {
      received++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;

  const files = new Map(
    [...generateMeshBundle({ services: SERVICES, withTimeRule: true })].map(([k, v]) => [k, Buffer.from(v)]),
  );
  const policySet = new ActivePolicySet();
  const activated = policySet.activateSource(filesToPolicySetSource(files, 'tracing-bench'));
  if (!activated.ok) throw activated.error;
  const logger = createLogger({
    level: 'info',
    destination: path.join(mkdtempSync(path.join(tmpdir(), 'tracing-bench-')), 'decisions.log'),
  });
  const handler = (tracing?: Tracing) =>
    new CheckHandler({
      policySet,
      metrics: new AuthzMetrics(false),
      decisionLog: new DecisionLog(logger, true),
      logger,
      cache: new EngineResultCache<EngineResult>(100_000, 60_000),
      tracing,
    });
  const tracing = Tracing.fromOptions({ endpoint, env: {} })!;
  const off = handler();
  const on = handler(tracing);
  const base = checkRequest(REPEATED_SHAPE, SERVICES);
  const sampled = withHeader(base, 'traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
  const unsampled = withHeader(base, 'traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00');

  const cases = [
    { name: 'tracing off (no --otel-endpoint)', run: () => off.handle(sampled) },
    { name: 'tracing on, Envoy sampled the trace (span exported)', run: () => on.handle(sampled) },
    { name: 'tracing on, Envoy did not sample the trace', run: () => on.handle(unsampled) },
  ];
  const times = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  for (const c of cases) for (let i = 0; i < 500; i++) c.run();
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of cases) {
      const t = performance.now();
      for (let i = 0; i < ITERATIONS; i++) c.run();
      times.get(c.name)!.push(((performance.now() - t) * 1000) / ITERATIONS);
      // Let the batch processor export between rounds, as it would between bursts.
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  await tracing.flush();
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const offMedian = median(times.get(cases[0].name)!);
  process.stdout.write(
    `CheckHandler.handle, cache hit, ${ITERATIONS} calls x ${ROUNDS} alternating rounds, median µs per call:\n`,
  );
  for (const c of cases) {
    const m = median(times.get(c.name)!);
    const all = times
      .get(c.name)!
      .map((x) => x.toFixed(1))
      .join(' ');
    process.stdout.write(
      `  ${c.name.padEnd(55)} ${m.toFixed(1)} µs  (${m === offMedian ? 'baseline' : `${m - offMedian >= 0 ? '+' : ''}${(m - offMedian).toFixed(1)} µs`})  rounds: ${all}\n`,
    );
  }
  // The increment alone (what the handler adds when tracing is on): recording one span, without the rest of the Check.
  const fields = (traceparent: string) => ({
    startedAt: performance.now(),
    endedAt: performance.now(),
    headers: { traceparent },
    outcome: 'allow',
    reason: 'allowed',
    status: 200,
    version: 'v1',
    policies: ['orders-frontend-access'],
    cache: 'hit' as const,
    principalType: 'Workload',
    service: 'orders',
    mode: 'normal',
    decisionId: 'id',
    failed: false,
  });
  const sampledFields = fields('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
  const unsampledFields = fields('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00');
  for (const [name, f] of [
    ['sampled', sampledFields],
    ['not sampled', unsampledFields],
  ] as const) {
    const per: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const t = performance.now();
      for (let i = 0; i < 2000; i++) tracing.recordCheck(f);
      per.push(((performance.now() - t) * 1000) / 2000);
      await tracing.flush();
    }
    process.stdout.write(
      `  Tracing.recordCheck alone, Envoy's trace ${name.padEnd(12)} ${median(per).toFixed(1)} µs (batches of 2,000 then a flush; rounds: ${per.map((x) => x.toFixed(1)).join(' ')})\n`,
    );
  }
  process.stdout.write(`  OTLP export requests received by the loopback sink: ${received}\n`);
  await tracing.shutdown();
  sink.close();
}

void main();
