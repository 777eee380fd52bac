/**
 * Token buckets by key, with bounded memory.
 *
 * A bucket that has refilled to its burst is indistinguishable from a bucket
 * that was never created, so dropping it changes no answer: that is how idle
 * keys expire, exactly. Buckets are kept in least-recently-used order, so the
 * idle candidates sit at the old end and each `take` inspects only a few of
 * them. When a flood of distinct keys still
 * exceeds `maxKeys`, the least recently used bucket is evicted early; that can
 * only make a limit more lenient for that key, never block anyone, and it is
 * counted so the bound can be raised.
 */
export interface Rate {
  requestsPerSecond: number;
  burst: number;
}

interface Bucket {
  key: string;
  tokens: number;
  /** When `tokens` was last brought up to date (epoch ms). */
  atMs: number;
  /** When the bucket will be full again if unused, i.e. when it may be dropped. */
  fullAtMs: number;
  /** Neighbours in least-recently-used order. */
  older: Bucket | undefined;
  newer: Bucket | undefined;
}

/** Idle buckets examined per take: enough to keep up with the rate keys arrive. */
const EXPIRY_CHECKS_PER_TAKE = 4;

export const DEFAULT_MAX_KEYS = 100_000;

/**
 * The recency order is an intrusive doubly linked list rather than the Map's
 * insertion order: deleting from the head of a Map leaves holes that every
 * later iteration from the head walks over, which made a flood of distinct
 * keys cost ~70 µs per check instead of ~2 µs.
 */
export class BucketStore {
  private readonly buckets = new Map<string, Bucket>();
  private oldest: Bucket | undefined;
  private newest: Bucket | undefined;
  private evictedCount = 0;

  constructor(
    readonly maxKeys: number = DEFAULT_MAX_KEYS,
    private readonly onEvict?: () => void,
  ) {}

  get size(): number {
    return this.buckets.size;
  }

  /** Buckets dropped before they were idle, because the store was full. */
  get evicted(): number {
    return this.evictedCount;
  }

  /**
   * Take one token. Returns 0 when granted, else the milliseconds until a token
   * will be available. A changed rate (e.g. the mode switched) applies at
   * once: the tokens are capped at the new burst.
   */
  take(key: string, rate: Rate, nowMs: number): number {
    let b = this.buckets.get(key);
    if (b === undefined) {
      b = { key, tokens: rate.burst, atMs: nowMs, fullAtMs: nowMs, older: undefined, newer: undefined };
      this.buckets.set(key, b);
    } else {
      this.unlink(b);
      const elapsed = nowMs > b.atMs ? nowMs - b.atMs : 0;
      b.tokens = Math.min(rate.burst, b.tokens + (elapsed * rate.requestsPerSecond) / 1000);
      b.atMs = nowMs;
    }
    this.append(b);
    let waitMs = 0;
    if (b.tokens >= 1) b.tokens -= 1;
    else waitMs = Math.max(1, ((1 - b.tokens) * 1000) / rate.requestsPerSecond);
    b.fullAtMs = nowMs + ((rate.burst - b.tokens) * 1000) / rate.requestsPerSecond;
    this.expire(nowMs);
    return waitMs;
  }

  private expire(nowMs: number): void {
    while (this.buckets.size > this.maxKeys && this.oldest) {
      this.drop(this.oldest);
      this.evictedCount++;
      this.onEvict?.();
    }
    for (let checks = EXPIRY_CHECKS_PER_TAKE; checks > 0 && this.oldest && this.oldest.fullAtMs <= nowMs; checks--)
      this.drop(this.oldest);
  }

  private drop(b: Bucket): void {
    this.unlink(b);
    this.buckets.delete(b.key);
  }

  private append(b: Bucket): void {
    b.older = this.newest;
    b.newer = undefined;
    if (this.newest) this.newest.newer = b;
    else this.oldest = b;
    this.newest = b;
  }

  private unlink(b: Bucket): void {
    if (b.older) b.older.newer = b.newer;
    else if (this.oldest === b) this.oldest = b.newer;
    if (b.newer) b.newer.older = b.older;
    else if (this.newest === b) this.newest = b.older;
    b.older = b.newer = undefined;
  }
}
