/**
 * Where the JS engine hands an evaluation to wasm, and why. Counted per process
 * (the server's metrics read the counts: `authz_engine_fallback_total{reason}`)
 * and told to a listener (the server logs it). Reasons are a small fixed set,
 * so the metric's labels stay bounded; the detail goes to the log line.
 */
export type FallbackReason =
  /** A policy of the slice uses something the compiler does not support (detail: which policy, what). */
  | 'unsupported_policy'
  /** The request holds data the evaluator does not read exactly (an integer past 2^53, an unknown value form). */
  | 'request_data';

export interface FallbackEvent {
  reason: FallbackReason;
  detail: string;
  policyId?: string;
}

const counts = new Map<FallbackReason, number>();
let listener: ((e: FallbackEvent) => void) | undefined;
/** Details already told (each once per process, so a hot fallback does not flood the log). */
const told = new Set<string>();
const MAX_TOLD = 1000;

export function recordFallback(e: FallbackEvent): void {
  counts.set(e.reason, (counts.get(e.reason) ?? 0) + 1);
  const key = `${e.reason}\n${e.policyId ?? ''}\n${e.detail}`;
  if (listener && !told.has(key)) {
    if (told.size >= MAX_TOLD) told.clear();
    told.add(key);
    listener(e);
  }
}

/** Evaluations decided by wasm instead of JS since start, by reason. */
export function fallbackCounts(): ReadonlyMap<FallbackReason, number> {
  return counts;
}

/** Who hears about fallbacks (the server's logger); one listener per process. */
export function onFallback(fn: ((e: FallbackEvent) => void) | undefined): void {
  listener = fn;
}

/** For tests. */
export function resetFallbacks(): void {
  counts.clear();
  told.clear();
}
