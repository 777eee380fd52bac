import { describe, expect, it } from 'vitest';
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
