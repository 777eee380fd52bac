/**
 * The decision cache: engine results by key (see cache-key.ts), bounded in
 * entries, each with a TTL, dropped whole when the policy set changes.
 *
 * Why not node-cache: measured here with 100k keys of ~150 characters
 * (scratch micro-benchmark, 2 loaded cores): node-cache set 3.9–7.2 µs, miss
 * 3.3–4.5 µs, and it has no eviction (with maxKeys it throws when full). A Map
 * with a ring of insertion slots does set ~1 µs, miss ~0.15 µs, and evicts the
 * oldest entry in O(1). (Evicting with `map.keys().next()` instead costs 30–40 µs
 * per insert once the map is full: V8 walks over the deleted slots at the front.)
 */
export interface DecisionCache<V> {
  get(key: string, nowMs: number): V | undefined;
  set(key: string, value: V, nowMs: number): void;
  /** Drop everything (on a policy-set swap). */
  clear(): void;
  readonly size: number;
  readonly maxEntries: number;
}

/**
 * Entries live in slots of parallel arrays (key, value, expiry), written in a
 * ring: the slot after the newest holds the oldest entry, evicted in O(1). The
 * Map holds only key → slot (a small integer, stored unboxed), so an entry
 * costs its key string, one Map entry and three array elements: no object per
 * entry, and no boxed expiry number (measured: `npx tsx bench/cache-cost.ts`).
 * Fewer, smaller live objects also keep the old generation small, which is
 * what a full collection has to walk.
 */
export class BoundedTtlCache<V> implements DecisionCache<V> {
  private map = new Map<string, number>();
  /** Per slot: its key (to evict it from the map), its value and its expiry; grown up to maxEntries as slots are first used. */
  private keys: Array<string | undefined> = [];
  private values: Array<V | undefined> = [];
  /** Numbers only (0 for a freed slot, never undefined), so V8 keeps them as unboxed doubles. */
  private expiries: number[] = [];
  /** The slot the next new entry takes: the ring's oldest once every slot has been used. */
  private next = 0;

  constructor(
    readonly maxEntries: number,
    readonly ttlMs: number,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1)
      throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
    if (!(ttlMs > 0)) throw new RangeError(`ttlMs must be positive, got ${ttlMs}`);
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string, nowMs: number): V | undefined {
    const slot = this.map.get(key);
    if (slot === undefined) return undefined;
    if (this.expiries[slot] <= nowMs) {
      this.map.delete(key);
      this.keys[slot] = undefined;
      this.values[slot] = undefined;
      this.expiries[slot] = 0;
      return undefined;
    }
    return this.values[slot];
  }

  set(key: string, value: V, nowMs: number): void {
    const expiresAt = nowMs + this.ttlMs;
    const existing = this.map.get(key);
    if (existing !== undefined) {
      this.values[existing] = value;
      this.expiries[existing] = expiresAt;
      return;
    }
    const slot = this.next;
    if (slot === this.keys.length) {
      // First pass over the ring: the arrays grow (amortised) instead of reserving maxEntries up front.
      this.keys.push(key);
      this.values.push(value);
      this.expiries.push(expiresAt);
    } else {
      const evicted = this.keys[slot];
      if (evicted !== undefined) this.map.delete(evicted);
      this.keys[slot] = key;
      this.values[slot] = value;
      this.expiries[slot] = expiresAt;
    }
    this.map.set(key, slot);
    this.next = slot + 1 === this.maxEntries ? 0 : slot + 1;
  }

  clear(): void {
    // Fresh containers rather than clearing in place: O(1) now, and no hole-filled table left behind.
    this.map = new Map();
    this.keys = [];
    this.values = [];
    this.expiries = [];
    this.next = 0;
  }
}

/** What a cached engine answer looks like, for interning (see EngineResultCache). */
interface ResultLike {
  decision: string;
  determining: readonly string[];
  errors: readonly { policyId: string; message: string }[];
}

/** Distinct answers kept for sharing; past this the table starts over (answers stay correct, only unshared). */
export const MAX_INTERNED_RESULTS = 10_000;

/**
 * The decision cache for engine results: equal answers are stored once and
 * shared by every key that has them. Most keys of a mesh share a handful of
 * answers ("allowed by X", "no permit"); measured, 100k entries take 44 MB of
 * heap with an object per entry and 33 MB shared.
 */
export class EngineResultCache<V extends ResultLike> extends BoundedTtlCache<V> {
  private interned = new Map<string, V>();

  override set(key: string, value: V, nowMs: number): void {
    const signature = `${value.decision}\n${value.determining.join('\n')}\n${value.errors.length ? JSON.stringify(value.errors) : ''}`;
    let shared = this.interned.get(signature);
    if (shared === undefined) {
      if (this.interned.size >= MAX_INTERNED_RESULTS) this.interned = new Map();
      this.interned.set(signature, value);
      shared = value;
    }
    super.set(key, shared, nowMs);
  }

  override clear(): void {
    super.clear();
    this.interned = new Map();
  }
}
