import { NO_BODY } from '../../src/envoy/request-body.js';
import { describe, expect, it } from 'vitest';
import { parseBundleSettings } from '../../src/bundle/bundle-settings.js';
import { ANONYMOUS, workloadPrincipal } from '../../src/context/principal.js';
import type { RequestModel } from '../../src/envoy/request-model.js';
import { BucketStore } from '../../src/ratelimit/bucket-store.js';
import { RateLimiter, rateLimitDecision } from '../../src/ratelimit/rate-limiter.js';

describe('BucketStore', () => {
  it('grants the burst at once, then one token per 1/rate seconds', () => {
    const store = new BucketStore();
    const rate = { requestsPerSecond: 2, burst: 3 };
    expect([0, 0, 0].map(() => store.take('k', rate, 1_000))).toEqual([0, 0, 0]);
    expect(store.take('k', rate, 1_000)).toBe(500);
    expect(store.take('k', rate, 1_250)).toBe(250);
    expect(store.take('k', rate, 1_500)).toBe(0);
    expect(store.take('other', rate, 1_500)).toBe(0);
  });

  it('a lower burst applies at once (the mode switched)', () => {
    const store = new BucketStore();
    for (let i = 0; i < 5; i++) store.take('k', { requestsPerSecond: 1, burst: 100 }, 0);
    expect(store.take('k', { requestsPerSecond: 1, burst: 1 }, 0)).toBe(0);
    expect(store.take('k', { requestsPerSecond: 1, burst: 1 }, 0)).toBe(1000);
  });

  it('drops buckets that have refilled (idle keys expire) and keeps those that have not', () => {
    const store = new BucketStore();
    const rate = { requestsPerSecond: 10, burst: 10 };
    for (let i = 0; i < 50; i++) store.take(`ip-${i}`, rate, 0);
    expect(store.size).toBe(50);
    // One token each was taken: full again after 100 ms. Each take expires a few idle ones.
    for (let i = 0; i < 20; i++) store.take('busy', rate, 50);
    expect(store.size).toBe(51);
    for (let i = 0; i < 20; i++) store.take('busy', rate, 200);
    expect(store.size).toBeLessThan(51);
    for (let i = 0; i < 20; i++) store.take('busy', rate, 300);
    expect(store.size).toBe(1);
  });

  it('evicts the least recently used key, keeping the ones in use', () => {
    const store = new BucketStore(3);
    const slow = { requestsPerSecond: 0.001, burst: 2 };
    for (const k of ['a', 'b', 'c', 'a', 'd']) store.take(k, slow, 0);
    expect(store.size).toBe(3);
    // "a" kept its state (both tokens spent); "b" was evicted and starts full again.
    expect(store.take('a', slow, 0)).toBeGreaterThan(0);
    expect(store.take('b', slow, 0)).toBe(0);
  });

  it('never holds more than maxKeys, evicting the least recently used', () => {
    let evictions = 0;
    const store = new BucketStore(100, () => evictions++);
    const slow = { requestsPerSecond: 0.001, burst: 1 };
    for (let i = 0; i < 1000; i++) store.take(`k${i}`, slow, 0);
    expect(store.size).toBe(100);
    expect(evictions).toBe(900);
    expect(store.take('k999', slow, 0)).toBeGreaterThan(0);
  });
});

function input(over: Partial<RequestModel> = {}): RequestModel {
  return {
    kind: 'http',
    method: 'GET',
    path: '/api/x',
    rawPath: '/api/x',
    query: {},
    host: 'frontend',
    scheme: 'http',
    protocol: 'HTTP/1.1',
    headers: {},
    headerCount: 0,
    source: { principal: '', service: '', ip: '198.51.100.7' },
    destination: { principal: '', service: '' },
    timeMs: 0,
    contextExtensions: {},
    service: 'frontend',
    sni: '',
    requestId: '',
    filterMetadata: {},
    body: NO_BODY,
    ...over,
  };
}

describe('RateLimiter', () => {
  const yaml = (mode: string) => `
mode: ${mode}
rateLimits:
  - name: anon-api
    match: { principalType: Anonymous, service: frontend, methods: [get, post], pathPrefix: /api }
    key: source.ip
    normal: { requestsPerSecond: 1, burst: 5 }
    high-alert: { requestsPerSecond: 0.2, burst: 1 }
  - name: per-tenant
    match: {}
    key: header:X-Tenant
    normal: { requestsPerSecond: 1, burst: 2 }
`;
  const normal = parseBundleSettings(yaml('normal'));
  const highAlert = parseBundleSettings(yaml('high-alert'));

  it('only matching requests take tokens; the first empty rule answers', () => {
    const rl = new RateLimiter();
    const rows = [
      { name: 'a workload is not Anonymous', in: input(), principal: workloadPrincipal('spiffe://td/ns/a/sa/b') },
      { name: 'wrong service', in: input({ service: 'orders' }), principal: ANONYMOUS },
      { name: 'method not listed', in: input({ method: 'DELETE' }), principal: ANONYMOUS },
      { name: 'outside the path prefix', in: input({ path: '/static/a.js' }), principal: ANONYMOUS },
    ];
    // Each row has its own tenant, so only anon-api could refuse it, and it must not even count it.
    rows.forEach((row, i) => {
      expect(
        rl.check(normal, { ...row.in, headers: { 'x-tenant': `t${i}` } }, row.principal, 0),
        row.name,
      ).toBeUndefined();
    });
    for (let i = 0; i < 5; i++)
      expect(rl.check(normal, input({ headers: { 'x-tenant': `u${i}` } }), ANONYMOUS, 0)).toBeUndefined();
    expect(rl.check(normal, input({ headers: { 'x-tenant': 'u9' } }), ANONYMOUS, 0)).toMatchObject({
      rule: 'anon-api',
      retryAfterSeconds: 1,
    });
  });

  it('a request without the key header shares one bucket instead of escaping the limit', () => {
    const rl = new RateLimiter();
    const other = input({ service: 'orders' });
    expect(rl.check(normal, other, ANONYMOUS, 0)).toBeUndefined();
    expect(rl.check(normal, other, ANONYMOUS, 0)).toBeUndefined();
    expect(rl.check(normal, other, ANONYMOUS, 0)).toMatchObject({ rule: 'per-tenant' });
  });

  it('high-alert uses the tighter rate, and the hit says which rule and how long to wait', () => {
    const rl = new RateLimiter();
    const anon = (ip: string) => input({ source: { principal: '', service: '', ip }, headers: { 'x-tenant': ip } });
    for (let i = 0; i < 2; i++) expect(rl.check(normal, anon('203.0.113.1'), ANONYMOUS, 0)).toBeUndefined();
    expect(rl.check(normal, anon('203.0.113.1'), ANONYMOUS, 0)).toMatchObject({
      rule: 'per-tenant',
      retryAfterSeconds: 1,
    });
    expect(rl.check(highAlert, anon('203.0.113.2'), ANONYMOUS, 0)).toBeUndefined();
    expect(rl.check(highAlert, anon('203.0.113.2'), ANONYMOUS, 0)).toMatchObject({
      rule: 'anon-api',
      mode: 'high-alert',
      rate: { requestsPerSecond: 0.2, burst: 1 },
      retryAfterSeconds: 5,
    });
  });

  it('a hit becomes a 429 with retry-after and x-ratelimit-limit', () => {
    const d = rateLimitDecision(
      {
        rule: 'anon-api',
        rate: { requestsPerSecond: 0.2, burst: 1 },
        share: { requestsPerSecond: 0.2, burst: 1 },
        servers: 1,
        mode: 'high-alert',
        retryAfterSeconds: 5,
      },
      'v3',
      'id',
    );
    expect(d).toMatchObject({
      kind: 'deny',
      reason: 'rate_limited',
      status: 429,
      headers: { 'retry-after': '5', 'x-ratelimit-limit': '0.2' },
      version: 'v3',
    });
    expect(d.message).toBe('rate limit "anon-api" exceeded: 0.2 requests per second, burst 1 (high-alert mode)');
  });

  it('long keys are hashed, so a huge header does not become a huge key', () => {
    const rl = new RateLimiter();
    const settings = parseBundleSettings(
      'rateLimits: [{ name: t, key: "header:x-k", normal: { requestsPerSecond: 1, burst: 1 } }]',
    );
    expect(rl.check(settings, input({ headers: { 'x-k': 'a'.repeat(10_000) } }), ANONYMOUS, 0)).toBeUndefined();
    expect(rl.check(settings, input({ headers: { 'x-k': 'a'.repeat(10_000) } }), ANONYMOUS, 0)).toMatchObject({
      rule: 't',
    });
    expect(rl.check(settings, input({ headers: { 'x-k': 'a'.repeat(9_999) + 'b' } }), ANONYMOUS, 0)).toBeUndefined();
  });

  it('in a fleet, a server enforces its share, recomputed as the live count changes; the hit names the fleet', () => {
    let servers = 3;
    const rl = new RateLimiter(undefined, { servers: () => servers });
    const settings = parseBundleSettings(
      'rateLimits: [{ name: anon, match: { principalType: Anonymous }, key: source.ip, normal: { requestsPerSecond: 0.001, burst: 9 } }]',
    );
    const from = (ip: string) => input({ source: { principal: '', service: '', ip } });
    const admitted = (ip: string) => {
      let n = 0;
      while (!rl.check(settings, from(ip), ANONYMOUS, 0)) n++;
      return n;
    };
    expect(admitted('192.0.2.1')).toBe(3);
    const hit = rl.check(settings, from('192.0.2.1'), ANONYMOUS, 0)!;
    expect(hit).toMatchObject({ rule: 'anon', servers: 3, rate: { burst: 9 }, share: { burst: 3 } });
    expect(rateLimitDecision(hit, 'v1', 'id').message).toBe(
      'rate limit "anon" exceeded: 0.001 requests per second, burst 9 (normal mode) across 3 servers',
    );
    servers = 1; // the others left: this server now holds the whole rate
    expect(admitted('192.0.2.2')).toBe(9);
    servers = 0; // no fleet reported: behaves as a single server
    expect(admitted('192.0.2.3')).toBe(9);
  });

  it("rateLimiting: envoy leaves counting to Envoy's global rate-limit service: the server refuses nobody", () => {
    const rl = new RateLimiter();
    const settings = parseBundleSettings(
      'rateLimiting: envoy\nrateLimits: [{ name: anon, key: source.ip, normal: { requestsPerSecond: 0.001, burst: 1 } }]',
    );
    for (let i = 0; i < 5; i++) expect(rl.check(settings, input(), ANONYMOUS, 0)).toBeUndefined();
    expect(rl.buckets.size).toBe(0);
    expect(() => parseBundleSettings('rateLimiting: redis')).toThrow(/rateLimiting/);
  });
});
