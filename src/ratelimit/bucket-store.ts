/**
 * Token buckets by key, with bounded memory.
 *
 * A bucket that has refilled to its burst is indistinguishable from a bucket
 * that was never created, so dropping it changes no answer: that is how idle
 * keys expire, exactly. The Map is kept in least-recently-used order (a key is
 * re-inserted on every use), so the idle candidates sit at its head and each
 * `take` inspects only a few of them. When a flood of distinct keys still
 * exceeds `maxKeys`, the least recently used bucket is evicted early; that can
 * only make a limit more lenient for that key, never block anyone, and it is
 * counted so the bound can be raised.
 */
export interface Rate {
  requestsPerSecond: number;
  burst: number;
}

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date (epoch ms). */
  atMs: number;
  /** When the bucket will be full again if unused, i.e. when it may be dropped. */
  fullAtMs: number;
}

/** Idle buckets examined per take: enough to keep up with the rate keys arrive. */
const EXPIRY_CHECKS_PER_TAKE = 4;

export const DEFAULT_MAX_KEYS = 100_000;

export class BucketStore {
  private readonly buckets = new Map<string, Bucket>();
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
      b = { tokens: rate.burst, atMs: nowMs, fullAtMs: nowMs };
    } else {
      this.buckets.delete(key);
      const elapsed = nowMs > b.atMs ? nowMs - b.atMs : 0;
      b.tokens = Math.min(rate.burst, b.tokens + (elapsed * rate.requestsPerSecond) / 1000);
      b.atMs = nowMs;
    }
    let waitMs = 0;
    if (b.tokens >= 1) b.tokens -= 1;
    else waitMs = Math.max(1, ((1 - b.tokens) * 1000) / rate.requestsPerSecond);
    b.fullAtMs = nowMs + ((rate.burst - b.tokens) * 1000) / rate.requestsPerSecond;
    this.buckets.set(key, b);
    this.expire(nowMs);
    return waitMs;
  }

  private expire(nowMs: number): void {
    let checks = EXPIRY_CHECKS_PER_TAKE;
    for (const [key, b] of this.buckets) {
      if (this.buckets.size > this.maxKeys) {
        this.buckets.delete(key);
        this.evictedCount++;
        this.onEvict?.();
      } else if (b.fullAtMs <= nowMs && checks-- > 0) {
        this.buckets.delete(key);
      } else {
        return;
      }
    }
  }
}
