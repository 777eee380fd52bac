import { describe, expect, it } from 'vitest';
import { MAX_BACKOFF_INTERVALS, pollDelayMs } from '../../src/bundle/sources/s3-bundle-syncer.js';

describe('pollDelayMs', () => {
  const rows: { name: string; interval: number; retries: number; random: number; expected: number }[] = [
    { name: 'a healthy poll waits the interval', interval: 2000, retries: 0, random: 0, expected: 2000 },
    {
      name: 'jitter only shortens the wait (a change still lands within one interval)',
      interval: 2000,
      retries: 0,
      random: 0.999999,
      expected: 1600,
    },
    { name: 'the first failure retries after one interval', interval: 2000, retries: 1, random: 0, expected: 2000 },
    { name: 'then the wait doubles', interval: 2000, retries: 3, random: 0, expected: 8000 },
    {
      name: `up to ${MAX_BACKOFF_INTERVALS} intervals`,
      interval: 2000,
      retries: 20,
      random: 0,
      expected: 2000 * MAX_BACKOFF_INTERVALS,
    },
    { name: 'and never beyond five minutes', interval: 60_000, retries: 20, random: 0, expected: 300_000 },
  ];
  for (const row of rows) {
    it(row.name, () => {
      expect(pollDelayMs(row.interval, row.retries, row.random)).toBeCloseTo(row.expected, 0);
    });
  }
});
