/**
 * h2load (nghttp2's HTTP/2 load generator, C): the client for repeated requests,
 * since it costs the shared cores far less than a Node client would. It sends
 * one pre-encoded gRPC frame over and over; gRPC answers HTTP 200 either way,
 * so correctness is checked separately with a real gRPC call.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CHECK_PATH } from '../requests.js';

export function h2loadAvailable(): boolean {
  return spawnSync('h2load', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Install Debian's nghttp2-client when we can (root with apt-get); false when h2load is still missing. */
export function ensureH2load(log: (s: string) => void): boolean {
  if (h2loadAvailable()) return true;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0) {
    log('h2load not found: installing nghttp2-client with apt-get ...');
    const install = spawnSync('apt-get', ['install', '-y', 'nghttp2-client'], { stdio: 'ignore' });
    if (install.status !== 0)
      spawnSync('sh', ['-c', 'apt-get update && apt-get install -y nghttp2-client'], { stdio: 'ignore' });
  }
  return h2loadAvailable();
}

export interface H2loadRun {
  port: number;
  frame: Buffer;
  clients: number;
  streamsPerClient: number;
  durationS: number;
  warmupS?: number;
  /** Requests per second per client (fixed rate); omitted = as fast as possible. */
  rpsPerClient?: number;
}

export interface H2loadResult {
  reqPerSec: number;
  succeeded: number;
  failed: number;
  /** Per-request latencies (ms), from h2load's log. */
  latenciesMs: number[];
}

export function runH2load(run: H2loadRun): H2loadResult {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-h2load-'));
  const body = path.join(dir, 'request.bin');
  const logFile = path.join(dir, 'requests.log');
  writeFileSync(body, run.frame);
  const args = [
    '-c',
    String(run.clients),
    '-m',
    String(run.streamsPerClient),
    '-D',
    String(run.durationS),
    '--log-file',
    logFile,
    '-d',
    body,
    '-H',
    'content-type: application/grpc',
    '-H',
    'te: trailers',
  ];
  if (run.warmupS) args.push('--warm-up-time', String(run.warmupS));
  if (run.rpsPerClient) args.push('--rps', String(run.rpsPerClient));
  args.push(`http://127.0.0.1:${run.port}${CHECK_PATH}`);
  const out = execFileSync('h2load', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const rate = /finished in [\d.]+s, ([\d.]+) req\/s/.exec(out);
  const counts = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out);
  if (!rate || !counts) throw new Error(`could not read h2load output:\n${out}`);
  const latenciesMs = readFileSync(logFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => Number(line.split('\t')[2]) / 1000);
  return {
    reqPerSec: Number(rate[1]),
    succeeded: Number(counts[1]),
    failed: Number(counts[2]) + Number(counts[3]),
    latenciesMs,
  };
}

export function h2loadVersion(): string {
  try {
    return execFileSync('h2load', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'absent';
  }
}
