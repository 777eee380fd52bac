import { describe, expect, it } from 'vitest';
import { decisionCacheKey, digestKey } from '../../src/cache/cache-key.js';
import { BoundedTtlCache, EngineResultCache } from '../../src/cache/decision-cache.js';

describe('BoundedTtlCache', () => {
  it('answers what was stored until the TTL passes', () => {
    const c = new BoundedTtlCache<string>(10, 1000);
    c.set('k', 'v', 0);
    expect(c.get('k', 999)).toBe('v');
    expect(c.get('k', 1000)).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it('holds at most maxEntries, dropping the oldest', () => {
    const c = new BoundedTtlCache<number>(3, 60_000);
    for (let i = 0; i < 5; i++) c.set(`k${i}`, i, 0);
    expect(c.size).toBe(3);
    expect([0, 1, 2, 3, 4].map((i) => c.get(`k${i}`, 1))).toEqual([undefined, undefined, 2, 3, 4]);
  });

  it('stays bounded over many inserts, with expired entries in between', () => {
    const c = new BoundedTtlCache<number>(100, 10);
    for (let i = 0; i < 10_000; i++) {
      c.set(`k${i}`, i, i);
      c.get(`k${i - 50}`, i);
    }
    expect(c.size).toBeLessThanOrEqual(100);
    expect(c.get('k9999', 9999)).toBe(9999);
  });

  it('a re-set refreshes value and expiry without taking a second slot', () => {
    const c = new BoundedTtlCache<string>(2, 100);
    c.set('a', '1', 0);
    c.set('a', '2', 50);
    expect(c.get('a', 120)).toBe('2');
    c.set('b', 'x', 60);
    expect(c.size).toBe(2);
  });

  it('clear drops everything', () => {
    const c = new BoundedTtlCache<string>(5, 100);
    c.set('a', '1', 0);
    c.clear();
    expect(c.size).toBe(0);
    expect(c.get('a', 1)).toBeUndefined();
    c.set('b', '2', 0);
    expect(c.get('b', 1)).toBe('2');
  });

  it('refuses nonsense bounds', () => {
    expect(() => new BoundedTtlCache(0, 10)).toThrow(/maxEntries/);
    expect(() => new BoundedTtlCache(10, 0)).toThrow(/ttlMs/);
  });
});

describe('EngineResultCache', () => {
  const result = (ids: string[]) => ({ decision: 'allow', determining: ids, errors: [] });
  it('equal answers are stored once and shared', () => {
    const c = new EngineResultCache<ReturnType<typeof result>>(10, 1000);
    c.set('a', result(['p1']), 0);
    c.set('b', result(['p1']), 0);
    c.set('c', result(['p2']), 0);
    expect(c.get('a', 1)).toBe(c.get('b', 1));
    expect(c.get('c', 1)).not.toBe(c.get('a', 1));
    expect(c.get('c', 1)?.determining).toEqual(['p2']);
  });
});

describe('decisionCacheKey (a digest of the key)', () => {
  const uid = (type: string, id: string) => ({ type, id });
  const key = (principalId: string, context: unknown) =>
    decisionCacheKey('v1', 'envoy', uid('Spiffe', principalId), uid('Action', 'GET'), uid('Service', 's'), 0, context);

  it('is 32 one-byte characters whatever the key holds', () => {
    for (const k of [key('a', {}), key('x'.repeat(5000), { path: '/é/日本/😀' })]) {
      expect(k).toHaveLength(32);
      expect([...k].every((c) => c.charCodeAt(0) < 256)).toBe(true);
    }
  });

  it('equal keys give equal digests; any difference gives a different one', () => {
    expect(key('a', { path: ['t', '01'] })).toBe(key('a', { path: ['t', '01'] }));
    const variants = [
      key('a', { path: ['t', '01'] }),
      key('a', { path: ['t', '10'] }),
      key('b', { path: ['t', '01'] }),
      key('a', { path: ['v', '01'] }),
      // Field boundaries cannot shift: the key is one JSON tuple.
      decisionCacheKey('v1', 'envoy', uid('Spiffe', 'a"'), uid('Action', 'GET'), uid('Service', 's'), 0, {}),
      decisionCacheKey('v1', 'envoy', uid('Spiffe', 'a'), uid('"Action', 'GET'), uid('Service', 's'), 0, {}),
      decisionCacheKey('v2', 'envoy', uid('Spiffe', 'a'), uid('Action', 'GET'), uid('Service', 's'), 0, {}),
      decisionCacheKey('v1', 'eval', uid('Spiffe', 'a'), uid('Action', 'GET'), uid('Service', 's'), 0, {}),
      decisionCacheKey('v1', 'envoy', uid('Spiffe', 'a'), uid('Action', 'GET'), uid('Service', 's'), [], {}),
    ];
    expect(new Set(variants).size).toBe(variants.length);
  });

  it('a lone surrogate and U+FFFD stay apart (UTF-8 would turn both into the same bytes)', () => {
    expect(key('\udc00', {})).not.toBe(key('\ufffd', {}));
    expect(key('a', { h: '\ud800' })).not.toBe(key('a', { h: '\ufffd' }));
  });

  it('digestKey is SHA-256 of the UTF-8 text', () => {
    expect(Buffer.from(digestKey('abc'), 'latin1').toString('hex')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });
});

describe('BoundedTtlCache slots', () => {
  /** The eviction rule spelled out plainly: a ring of key slots, the next one taken by each new key. */
  class RingModel {
    private readonly entries = new Map<string, { v: number; until: number; slot: number }>();
    private readonly slots: Array<string | undefined>;
    private next = 0;
    constructor(private readonly n: number) {
      this.slots = new Array(n);
    }
    get(k: string, t: number): number | undefined {
      const e = this.entries.get(k);
      if (!e) return undefined;
      if (e.until <= t) {
        this.entries.delete(k);
        this.slots[e.slot] = undefined;
        return undefined;
      }
      return e.v;
    }
    set(k: string, v: number, t: number): void {
      const e = this.entries.get(k);
      if (e) {
        e.v = v;
        e.until = t + 50;
        return;
      }
      const old = this.slots[this.next];
      if (old !== undefined) this.entries.delete(old);
      this.slots[this.next] = k;
      this.entries.set(k, { v, until: t + 50, slot: this.next });
      this.next = (this.next + 1) % this.n;
    }
    get size(): number {
      return this.entries.size;
    }
    clear(): void {
      this.entries.clear();
      this.slots.fill(undefined);
      this.next = 0;
    }
  }

  it('answers as the plain ring would over many trips round it, with expiries and re-sets', () => {
    const c = new BoundedTtlCache<number>(7, 50);
    const model = new RingModel(7);
    for (let t = 0; t < 5000; t++) {
      const k = `k${(t * 13 + (t >> 4)) % 23}`;
      expect(c.get(k, t)).toBe(model.get(k, t));
      if (t % 3 === 0) {
        c.set(k, t, t);
        model.set(k, t, t);
      }
      expect(c.size).toBe(model.size);
      if (t === 2500) {
        c.clear();
        model.clear();
      }
    }
  });
});
