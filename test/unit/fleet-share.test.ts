import { describe, expect, it } from 'vitest';
import { fleetShare, normaliseFleetSize } from '../../src/ratelimit/fleet-share.js';

describe("fleetShare: one server's part of a fleet-wide rate", () => {
  const rows = [
    {
      name: 'a server alone enforces the rate itself',
      rate: { requestsPerSecond: 10, burst: 20 },
      servers: 1,
      expected: { requestsPerSecond: 10, burst: 20 },
    },
    {
      name: 'no fleet reported (0) is a server alone',
      rate: { requestsPerSecond: 10, burst: 20 },
      servers: 0,
      expected: { requestsPerSecond: 10, burst: 20 },
    },
    {
      name: 'three servers: a third each',
      rate: { requestsPerSecond: 30, burst: 60 },
      servers: 3,
      expected: { requestsPerSecond: 10, burst: 20 },
    },
    {
      name: 'uneven division keeps fractions (no rounding up the fleet total)',
      rate: { requestsPerSecond: 10, burst: 20 },
      servers: 3,
      expected: { requestsPerSecond: 10 / 3, burst: 20 / 3 },
    },
    {
      name: 'twenty servers, high-alert 2/s burst 4: burst floors at one request',
      rate: { requestsPerSecond: 2, burst: 4 },
      servers: 20,
      expected: { requestsPerSecond: 0.1, burst: 1 },
    },
    {
      name: "burst 1 over 3 servers stays 1 (one request's worth)",
      rate: { requestsPerSecond: 0.5, burst: 1 },
      servers: 3,
      expected: { requestsPerSecond: 0.5 / 3, burst: 1 },
    },
  ];
  for (const row of rows) it(row.name, () => expect(fleetShare(row.rate, row.servers)).toEqual(row.expected));

  it('the shares of a fleet add up to the fleet-wide rate (while bursts stay above one)', () => {
    const rate = { requestsPerSecond: 100, burst: 200 };
    for (const n of [1, 2, 3, 7, 20]) {
      const share = fleetShare(rate, n);
      expect(share.requestsPerSecond * n).toBeCloseTo(100, 9);
      expect(share.burst * n).toBeCloseTo(200, 9);
    }
  });

  const sizes = [
    { input: undefined, expected: 1 },
    { input: -2, expected: 1 },
    { input: 2.5, expected: 1 },
    { input: Number.NaN, expected: 1 },
    { input: 4, expected: 4 },
  ];
  for (const s of sizes)
    it(`normaliseFleetSize(${s.input}) = ${s.expected}`, () => expect(normaliseFleetSize(s.input)).toBe(s.expected));
});
