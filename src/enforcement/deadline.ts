/**
 * The time by which a decision must be made: the sooner of `--decision-timeout`
 * after the handler starts and the gRPC deadline Envoy sent (its ext_authz
 * `timeout`). Past it, Envoy has given up or the operator said the answer is
 * too late, so the route's fail mode answers instead. Evaluation is
 * synchronous and cannot be interrupted, so the deadline is checked before it
 * and again after it.
 */
export type DeadlineSource = 'decision-timeout' | 'grpc';

export interface Deadline {
  /** Epoch milliseconds; Infinity when there is none. */
  atMs: number;
  source: DeadlineSource;
}

export const NO_DEADLINE: Deadline = Object.freeze({ atMs: Infinity, source: 'grpc' as DeadlineSource });

/** Epoch milliseconds with sub-millisecond precision (Date.now() is too coarse for a 1 ms budget). */
export function epochNowMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * @param startedMs when the handler started (epoch ms)
 * @param timeoutMs `--decision-timeout`; 0 means none
 * @param grpcDeadline grpc-js's `call.getDeadline()`: a Date, epoch ms, or Infinity
 */
export function decisionDeadline(startedMs: number, timeoutMs: number, grpcDeadline?: Date | number): Deadline {
  const grpcMs =
    grpcDeadline === undefined ? Infinity : grpcDeadline instanceof Date ? grpcDeadline.getTime() : grpcDeadline;
  const ownMs = timeoutMs > 0 ? startedMs + timeoutMs : Infinity;
  if (ownMs === Infinity && !Number.isFinite(grpcMs)) return NO_DEADLINE;
  return ownMs <= grpcMs ? { atMs: ownMs, source: 'decision-timeout' } : { atMs: grpcMs, source: 'grpc' };
}

export function deadlineMessage(d: Deadline, timeoutMs: number): string {
  return d.source === 'grpc'
    ? 'the decision could not be made before the deadline Envoy set for this check'
    : `the decision could not be made within the ${timeoutMs} ms decision timeout`;
}

/**
 * Answering exactly at Envoy's deadline is answering too late: Envoy has
 * already given up and applies its own failure_mode_allow instead of the
 * route's fail mode. So a wait ends this much before a gRPC deadline (a tenth
 * of the time left when that is less).
 */
export const GRPC_DEADLINE_MARGIN_MS = 50;

/** When a wait (for an issuer's keys, say) must end for the answer to still count. */
export function waitLimitMs(d: Deadline, nowMs: number = epochNowMs()): number {
  if (d.source !== 'grpc' || !Number.isFinite(d.atMs)) return d.atMs;
  return d.atMs - Math.min(GRPC_DEADLINE_MARGIN_MS, Math.max(0, d.atMs - nowMs) / 10);
}

/**
 * `work`, or `late()` if `work` has not settled by the deadline's wait limit.
 * The work is not cancelled (a shared key fetch still serves later requests); only this wait ends.
 */
export function withinDeadline<T>(work: Promise<T>, d: Deadline, late: () => T): Promise<T> {
  if (!Number.isFinite(d.atMs)) return work;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => resolve(late()), Math.max(0, waitLimitMs(d) - epochNowMs()));
    work.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
