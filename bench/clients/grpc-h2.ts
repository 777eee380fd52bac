/**
 * A lean gRPC client over node:http2 that writes pre-encoded frames: the paced
 * client for distinct requests (h2load can only repeat one body), and the
 * fallback for everything when h2load is missing. Latency is measured from the
 * write to the trailers, on the client's monotonic clock.
 */
import http2 from 'node:http2';
import { CHECK_PATH } from '../requests.js';

const HEADERS = { ':method': 'POST', ':path': CHECK_PATH, 'content-type': 'application/grpc', te: 'trailers' };

export interface Outcome {
  ok: boolean;
  latencyMs: number;
  /** Set when the call failed at the transport (stream error, reset). */
  error?: string;
}

export class GrpcH2Client {
  private readonly sessions: http2.ClientHttp2Session[] = [];
  private next = 0;

  constructor(port: number, connections = 1) {
    for (let i = 0; i < connections; i++) {
      const s = http2.connect(`http://127.0.0.1:${port}`);
      s.on('error', () => undefined);
      this.sessions.push(s);
    }
  }

  call(frame: Buffer): Promise<Outcome> {
    const session = this.sessions[this.next];
    this.next = (this.next + 1) % this.sessions.length;
    return new Promise((resolve) => {
      const started = performance.now();
      let status: string | undefined;
      let error: string | undefined;
      const stream = session.request(HEADERS);
      stream.on('response', (h) => {
        // A trailers-only answer carries grpc-status in the headers.
        if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
      });
      stream.on('trailers', (t) => {
        status = String(t['grpc-status']);
      });
      stream.on('data', () => undefined);
      stream.on('error', (err) => {
        error = err.message;
      });
      stream.on('close', () =>
        resolve({
          ok: status === '0' && !error,
          latencyMs: performance.now() - started,
          ...(error ? { error } : status !== '0' ? { error: `grpc-status ${status}` } : {}),
        }),
      );
      stream.end(frame);
    });
  }

  close(): void {
    for (const s of this.sessions) s.close();
  }
}

export interface LoadResult {
  sent: number;
  ok: number;
  failed: number;
  latenciesMs: number[];
  elapsedS: number;
  reqPerSec: number;
  /** Sends that left more than 5 ms after their slot (the client itself fell behind). */
  lateSends: number;
  errors: string[];
}

function summarise(outcomes: Outcome[], elapsedS: number, lateSends = 0): LoadResult {
  const failedOnes = outcomes.filter((o) => !o.ok);
  return {
    sent: outcomes.length,
    ok: outcomes.length - failedOnes.length,
    failed: failedOnes.length,
    latenciesMs: outcomes.map((o) => o.latencyMs),
    elapsedS,
    reqPerSec: outcomes.length / elapsedS,
    lateSends,
    errors: [...new Set(failedOnes.map((o) => o.error ?? 'unknown'))].slice(0, 5),
  };
}

/** Open loop: send frames[i % n] at a fixed rate for `durationS`, whatever the answers do. */
export async function paced(
  client: GrpcH2Client,
  frames: Buffer[],
  rate: number,
  durationS: number,
  onTick?: (elapsedS: number) => void,
): Promise<LoadResult> {
  const total = Math.round(rate * durationS);
  const pending: Promise<Outcome>[] = [];
  const t0 = performance.now();
  let sent = 0;
  let late = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      onTick?.((now - t0) / 1000);
      const due = Math.min(total, Math.floor(((now - t0) / 1000) * rate) + 1);
      for (; sent < due; sent++) {
        if (now - (t0 + (sent / rate) * 1000) > 5) late++;
        pending.push(client.call(frames[sent % frames.length]));
      }
      if (sent >= total) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  const outcomes = await Promise.all(pending);
  return summarise(outcomes, (performance.now() - t0) / 1000, late);
}

/** Closed loop: keep `concurrency` calls in flight for `durationS` (or until `maxRequests`). */
export async function closedLoop(
  client: GrpcH2Client,
  frames: Buffer[],
  concurrency: number,
  durationS: number,
  maxRequests = Infinity,
): Promise<LoadResult> {
  const outcomes: Outcome[] = [];
  const t0 = performance.now();
  const until = t0 + durationS * 1000;
  let i = 0;
  const lane = async (): Promise<void> => {
    while (performance.now() < until && i < maxRequests) {
      const frame = frames[i++ % frames.length];
      outcomes.push(await client.call(frame));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return summarise(outcomes, (performance.now() - t0) / 1000);
}
