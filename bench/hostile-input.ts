/**
 * `npx tsx bench/hostile-input.ts`: what the hostile CheckRequests of issue 12
 * cost the server, against the unbounded decode they used to get (baseline,
 * measured in the same run: protobufjs decoding the same bytes in full).
 *
 * The server runs in this process (so its event loop and RSS are the ones
 * measured); the client that sends the requests runs in a child process.
 * Loop hold is the longest event-loop delay seen while the request was in
 * flight (perf_hooks.monitorEventLoopDelay, 1 ms resolution); RSS is this
 * process's resident set after the answer, and its peak over the whole run.
 */
import { fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/load-config.js';
import { scanCheckRequest, DEFAULT_CHECK_REQUEST_LIMITS } from '../src/envoy/check-request-limits.js';
import { authorizationService } from '../src/envoy/protos.js';
import { createLogger } from '../src/observability/logger.js';
import { startAuthzServer } from '../src/server/authz-server.js';
import { istioRequest } from '../test/support/requests.js';
import {
  connectRawCheck,
  emptyContextExtensionsRequest,
  emptyHeaderMapRequest,
} from '../test/support/hostile-requests.js';

const MIB = 1024 * 1024;
const CASES: Record<string, () => Buffer> = {
  'header_map: 4,000,000 empty entries': () => emptyHeaderMapRequest(4_000_000),
  'context_extensions: 900,000 entries': () => emptyContextExtensionsRequest(900_000),
};

const mb = (n: number) => `${Math.round(n / 1e5) / 10} MB`;

if (process.argv[2] === 'client') {
  // Child: send the named case (count times at once) and report the answers.
  const [, , , port, name, count] = process.argv;
  const raw = connectRawCheck(Number(port));
  const bytes = CASES[name]();
  // Connected and warm before the parent starts measuring: only the hostile requests are in the window.
  await raw.check(raw.encode(istioRequest({ path: '/public/x', host: 'frontend' })));
  process.send!('ready');
  await new Promise((resolve) => process.once('message', resolve));
  const answers = await Promise.all(Array.from({ length: Number(count) }, () => raw.check(bytes, 120_000)));
  process.send!(answers.map((a) => `${a.status.code}/${a.denied_response?.status?.code ?? 200}`));
  raw.close();
  process.exit(0);
}

function baseline(name: string): void {
  const bytes = CASES[name]();
  global.gc?.();
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const decoded = authorizationService().service.Check.requestDeserialize(bytes);
  const ms = performance.now() - t0;
  const rss1 = process.memoryUsage().rss;
  // The scan is the only step whose cost depends on the message's contents: its warm time, best of 20.
  let scanMs = Infinity;
  let scan = scanCheckRequest(bytes, { ...DEFAULT_CHECK_REQUEST_LIMITS, maxRequestBytes: 64 * MIB });
  for (let i = 0; i < 20; i++) {
    const s0 = performance.now();
    scan = scanCheckRequest(bytes, { ...DEFAULT_CHECK_REQUEST_LIMITS, maxRequestBytes: 64 * MIB });
    scanMs = Math.min(scanMs, performance.now() - s0);
  }
  console.log(
    `  ${name} (${mb(bytes.length)}): full protobufjs decode ${ms.toFixed(0)} ms, RSS +${mb(rss1 - rss0)} | wire scan ${scanMs.toFixed(3)} ms -> ${scan.ok ? 'ok' : scan.message}`,
  );
  void decoded;
}

async function serve(maxRequestBytes: number, label: string): Promise<void> {
  const logFile = path.join(mkdtempSync(path.join(tmpdir(), 'hostile-')), 'authz.log');
  const config = loadConfig({
    flags: {
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      policies: 'policies',
      maxRequestBytes: String(maxRequestBytes),
    },
    env: {},
  });
  const server = await startAuthzServer(config, { logger: createLogger({ level: 'info', destination: logFile }) });
  console.log(`server with max-request-bytes ${maxRequestBytes} (${label}):`);
  for (const name of Object.keys(CASES)) {
    for (const count of [1, 4]) {
      const child = fork(fileURLToPath(import.meta.url), ['client', String(server.grpcPort), name, String(count)], {
        execArgv: ['--import', 'tsx'],
      });
      await new Promise((resolve) => child.once('message', resolve));
      global.gc?.();
      // The same window with nothing sent: what this machine's load alone does to the loop.
      const idle = monitorEventLoopDelay({ resolution: 1 });
      idle.enable();
      await new Promise((resolve) => setTimeout(resolve, 500));
      idle.disable();
      const rss0 = process.memoryUsage().rss;
      const histogram = monitorEventLoopDelay({ resolution: 1 });
      histogram.enable();
      const cpu0 = process.cpuUsage();
      const answers = await new Promise<string[]>((resolve, reject) => {
        child.once('message', (m) => resolve(m as string[]));
        child.once('exit', (code) => code !== 0 && reject(new Error(`client exited ${code}`)));
        child.send('go');
      });
      histogram.disable();
      const cpu = process.cpuUsage(cpu0);
      const rss1 = process.memoryUsage().rss;
      console.log(
        `  ${count} x ${name}: answers ${answers.join(',')}; longest loop delay ${(histogram.max / 1e6).toFixed(1)} ms (p99 ${(histogram.percentile(99) / 1e6).toFixed(1)} ms; idle control ${(idle.max / 1e6).toFixed(1)} ms); server CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms; RSS ${mb(rss0)} -> ${mb(rss1)}`,
      );
    }
  }
  await server.close();
}

console.log(
  `hostile-input measurement, node ${process.version}, ${new Date().toISOString()}, load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
await serve(
  DEFAULT_CHECK_REQUEST_LIMITS.maxRequestBytes,
  'default: over the size limit, refused from the length prefix',
);
await serve(8 * MIB, 'raised: refused by the wire scan');
console.log(`peak RSS of this process while serving them: ${mb(process.resourceUsage().maxRSS * 1024)}`);
console.log('baseline (the full decode every such request used to get), same process, after the server runs:');
for (const name of Object.keys(CASES)) baseline(name);
