import { describe, expect, it } from 'vitest';
import { StalePolicyGuard } from '../../src/bundle/sources/stale-policy-guard.js';

describe('stale-policy guard', () => {
  const rows: { name: string; confirmedAgoMs: number | undefined; stale: boolean; message: RegExp }[] = [
    { name: 'just confirmed', confirmedAgoMs: 0, stale: false, message: /for 0ms/ },
    { name: 'exactly at the limit', confirmedAgoMs: 600_000, stale: false, message: /for 10m0s/ },
    {
      name: 'past the limit',
      confirmedAgoMs: 720_000,
      stale: true,
      message: /policy version v3 not confirmed with the store for 12m0s \(max policy age 10m0s\)/,
    },
    {
      name: 'never confirmed',
      confirmedAgoMs: undefined,
      stale: true,
      message: /not confirmed with the store since start/,
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const now = 1_000_000_000;
      const changes: boolean[] = [];
      const guard = new StalePolicyGuard(
        600_000,
        () => (row.confirmedAgoMs === undefined ? undefined : new Date(now - row.confirmedAgoMs)),
        (s) => changes.push(s),
        () => now,
      );
      guard.check();
      expect(guard.stale).toBe(row.stale);
      expect(changes).toEqual(row.stale ? [true] : []);
      expect(guard.message('v3')).toMatch(row.message);
    });
  }

  it('reports each change once, in both directions', () => {
    let now = 0;
    let confirmed = new Date(0);
    const changes: boolean[] = [];
    const guard = new StalePolicyGuard(
      1000,
      () => confirmed,
      (s) => changes.push(s),
      () => now,
    );
    for (const t of [500, 1500, 2000]) (now = t), guard.check();
    confirmed = new Date(2000);
    for (const t of [2100, 2200]) (now = t), guard.check();
    expect(changes).toEqual([true, false]);
  });
});
