import { NO_BODY } from '../../src/envoy/request-body.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventLoopLoad, fixedLoad, type LoopTimes } from '../../src/context/server-load.js';
import { riskScore } from '../../src/context/risk.js';
import { LocalTimeZone } from '../../src/context/time-fields.js';
import type { RequestModel } from '../../src/envoy/request-model.js';

function model(over: Partial<RequestModel> = {}): RequestModel {
  return {
    kind: 'http',
    method: 'GET',
    path: '/',
    rawPath: '/',
    query: {},
    host: 'api',
    scheme: 'http',
    protocol: 'HTTP/1.1',
    headers: {},
    headerCount: 0,
    source: { principal: '', service: '' },
    destination: { principal: '', service: '' },
    timeMs: Date.UTC(2026, 0, 5, 12),
    contextExtensions: {},
    service: 'api',
    sni: '',
    requestId: '',
    filterMetadata: {},
    body: NO_BODY,
    ...over,
  };
}

describe('LocalTimeZone', () => {
  it.each([
    { tz: 'UTC', at: '2026-01-05T00:00:00Z', hour: 0, weekday: 1 },
    { tz: 'UTC', at: '2026-01-11T23:59:59Z', hour: 23, weekday: 7 },
    { tz: 'Europe/Berlin', at: '2026-01-05T07:00:00Z', hour: 8, weekday: 1 },
    { tz: 'Europe/Berlin', at: '2026-07-06T07:00:00Z', hour: 9, weekday: 1 },
    // DST starts 2026-03-29 01:00Z in Berlin: 00:59Z is 01:59 CET, 01:00Z is 03:00 CEST.
    { tz: 'Europe/Berlin', at: '2026-03-29T00:59:00Z', hour: 1, weekday: 7 },
    { tz: 'Europe/Berlin', at: '2026-03-29T01:00:00Z', hour: 3, weekday: 7 },
    { tz: 'America/New_York', at: '2026-01-06T03:00:00Z', hour: 22, weekday: 1 },
    { tz: 'Asia/Kathmandu', at: '2026-01-05T18:14:00Z', hour: 23, weekday: 1 },
    { tz: 'Asia/Kathmandu', at: '2026-01-05T18:15:00Z', hour: 0, weekday: 2 },
  ])('$tz at $at → hour $hour, weekday $weekday', ({ tz, at, hour, weekday }) => {
    expect(new LocalTimeZone(tz).fields(Date.parse(at))).toEqual({ hour, weekday });
  });

  it('refuses an unknown zone', () => {
    expect(() => new LocalTimeZone('Mars/Olympus_Mons')).toThrow(RangeError);
  });

  it('the per-slice memo answers what a fresh computation answers', () => {
    const zones = ['UTC', 'Europe/Berlin', 'Asia/Kathmandu', 'Australia/Lord_Howe', 'America/St_Johns'];
    const memo = new Map(zones.map((z) => [z, new LocalTimeZone(z)]));
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 0, 1) }),
        (tz, ms) => {
          expect(memo.get(tz)!.fields(ms)).toEqual(new LocalTimeZone(tz).fields(ms));
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('riskScore', () => {
  const settings = { header: 'x-risk-score', trustedPrincipals: new Set(['spiffe://gw']) };
  it.each([
    { name: 'trusted integer', principal: 'spiffe://gw', value: '42', expected: 42 },
    { name: 'zero', principal: 'spiffe://gw', value: '0', expected: 0 },
    { name: 'hundred', principal: 'spiffe://gw', value: ' 100 ', expected: 100 },
    // From a trusted sender, an unreadable score is the highest risk, never absent.
    { name: 'above range', principal: 'spiffe://gw', value: '101', expected: 100 },
    { name: 'far above range', principal: 'spiffe://gw', value: '999', expected: 100 },
    { name: 'negative', principal: 'spiffe://gw', value: '-1', expected: 100 },
    { name: 'fraction', principal: 'spiffe://gw', value: '4.5', expected: 100 },
    { name: 'decimal form of an integer', principal: 'spiffe://gw', value: '95.0', expected: 100 },
    { name: 'explicit sign', principal: 'spiffe://gw', value: '+95', expected: 100 },
    { name: 'text', principal: 'spiffe://gw', value: 'high', expected: 100 },
    { name: 'empty', principal: 'spiffe://gw', value: '', expected: 100 },
    {
      name: "sent twice (client copy plus the gateway's, joined by Envoy)",
      principal: 'spiffe://gw',
      value: '0,95',
      expected: 100,
    },
    { name: 'sent twice with the same value', principal: 'spiffe://gw', value: '95,95', expected: 100 },
    { name: 'too many digits', principal: 'spiffe://gw', value: '0042', expected: 100 },
    { name: 'untrusted sender, malformed value', principal: 'spiffe://other', value: '0,95', expected: undefined },
    { name: 'untrusted sender', principal: 'spiffe://other', value: '42', expected: undefined },
    { name: 'no mTLS identity', principal: '', value: '42', expected: undefined },
    { name: 'missing header', principal: 'spiffe://gw', value: undefined, expected: undefined },
  ])('$name', ({ principal, value, expected }) => {
    const input = model({
      source: { principal, service: '' },
      headers: value === undefined ? {} : { 'x-risk-score': value },
    });
    expect(riskScore(input, settings)).toBe(expected);
  });

  it('is absent when no risk header is configured', () => {
    expect(riskScore(model({ headers: { 'x-risk-score': '42' } }), undefined)).toBeUndefined();
  });
});

describe('EventLoopLoad', () => {
  /** A loop-time reader the test advances by hand. */
  function clock() {
    const t: LoopTimes = { idle: 0, active: 0 };
    return {
      t,
      read: () => ({ ...t }),
      run: (active: number, idle: number) => ((t.active += active), (t.idle += idle)),
    };
  }

  it('reports the busy share of the last window as 0-100', () => {
    const c = clock();
    const load = new EventLoopLoad(1000, 250, c.read);
    expect(load.current()).toBe(0);
    for (let i = 0; i < 4; i++) {
      c.run(50, 200);
      load.sample();
    }
    expect(load.current()).toBe(20);
    for (let i = 0; i < 4; i++) {
      c.run(225, 25);
      load.sample();
    }
    expect(load.current()).toBe(90);
  });

  it('forgets samples older than the window', () => {
    const c = clock();
    const load = new EventLoopLoad(1000, 250, c.read);
    c.run(250, 0);
    load.sample();
    for (let i = 0; i < 4; i++) {
      c.run(0, 250);
      load.sample();
    }
    expect(load.current()).toBe(0);
  });

  it('reads a stall longer than the window as fully loaded', () => {
    const c = clock();
    const load = new EventLoopLoad(1000, 250, c.read);
    c.run(0, 750);
    load.sample();
    c.run(3000, 0);
    load.sample();
    expect(load.current()).toBe(100);
  });

  it('fixedLoad clamps to 0-100', () => {
    expect(fixedLoad(150).current()).toBe(100);
    expect(fixedLoad(-3).current()).toBe(0);
    expect(fixedLoad(42.4).current()).toBe(42);
  });
});
