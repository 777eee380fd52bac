/**
 * Context fields through the real server with the example policies in
 * policies/: business hours (bundle.yaml timezone), the blocklist, risk
 * step-up; and load shedding on a server whose event loop really is busy.
 */
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AUDIENCE,
  GATEWAY,
  ISSUER,
  policyDir,
  signingKey,
  startContextServer,
  token,
  type SigningKey,
  type ContextServer,
} from './context-harness.js';

const EXAMPLES = path.resolve('policies');
const ADMIN_CONSOLE = 'spiffe://cluster.local/ns/ops/sa/admin-console';
const RISK_ENGINE = 'spiffe://cluster.local/ns/risk/sa/engine';

describe('the example policies with identity, lists, risk and time', () => {
  let key: SigningKey;
  let keysDir: string;
  let server: ContextServer;
  let otherRiskSource: ContextServer;
  let admin: string;
  let shopper: string;
  let shopperMfa: string;

  beforeAll(async () => {
    key = await signingKey('local-1');
    keysDir = await mkdtemp(path.join(tmpdir(), 'authz-jwks-'));
    const jwksFile = path.join(keysDir, 'jwks.json');
    await writeFile(jwksFile, JSON.stringify({ keys: [key.publicJwk] }));
    const common = {
      policies: EXAMPLES,
      jwtIssuer: ISSUER,
      jwtAudience: AUDIENCE,
      jwks: jwksFile,
      riskHeader: 'X-Risk-Score',
      trustedHops: 1,
    };
    server = await startContextServer({ ...common, riskTrustedPrincipal: [GATEWAY] });
    otherRiskSource = await startContextServer({ ...common, riskTrustedPrincipal: [RISK_ENGINE] });
    admin = `Bearer ${await token(key, { groups: ['admins'] })}`;
    shopper = `Bearer ${await token(key, { sub: 'carol' })}`;
    shopperMfa = `Bearer ${await token(key, { sub: 'carol', acr: 'mfa' })}`;
  });

  afterAll(async () => {
    await server?.close();
    await otherRiskSource?.close();
    if (keysDir) await rm(keysDir, { recursive: true, force: true });
  });

  describe('business hours for the admin API (bundle.yaml timezone: Europe/Berlin)', () => {
    const adminCall = (authorization: string, time: string) => ({
      host: 'orders',
      path: '/admin/users',
      principal: GATEWAY,
      headers: { authorization },
      time,
    });

    it.each([
      ['Monday 10:00 in Berlin (09:00Z, winter)', '2026-03-02T09:00:00Z', true],
      ['Monday 07:30 in Berlin (06:30Z, winter time, UTC+1)', '2026-03-02T06:30:00Z', false],
      ['Monday 08:30 in Berlin (06:30Z, summer time, UTC+2)', '2026-03-30T06:30:00Z', true],
      ['Monday 18:30 in Berlin (17:30Z)', '2026-03-02T17:30:00Z', false],
      ['Friday 17:59 in Berlin', '2026-03-06T16:59:00Z', true],
      ['Saturday 10:00 in Berlin', '2026-03-07T09:00:00Z', false],
      ['Sunday 00:30 in Berlin (still Saturday in UTC)', '2026-03-07T23:30:00Z', false],
    ])('%s → allowed: %s', async (_label, time, allowed) => {
      const answer = await server.check(adminCall(admin, time));
      if (allowed) {
        expect(answer).toMatchObject({ allowed: true });
      } else {
        expect(answer).toMatchObject({ allowed: false, status: 403, policies: ['admin-api-business-hours'] });
        expect(answer.message).toBe('the admin API is open to people on weekdays 08:00-18:00 Europe/Berlin time');
      }
    });

    it('does not bind automation (workload principals) to office hours', async () => {
      const answer = await server.check({
        host: 'orders',
        path: '/admin/users',
        principal: ADMIN_CONSOLE,
        time: '2026-03-08T22:00:00Z',
      });
      expect(answer).toMatchObject({ allowed: true });
    });

    it('reports the timezone and lists of the active set on /bundle', async () => {
      const res = await fetch(`http://127.0.0.1:${server.running.adminPort}/bundle`);
      const body = (await res.json()) as { timezone: string; lists: { name: string; entries: number }[] };
      expect(body.timezone).toBe('Europe/Berlin');
      expect(body.lists).toEqual([{ name: 'blocklist', entries: 3 }]);
    });
  });

  describe('blocklisted networks (lists/blocklist.txt)', () => {
    const browse = (sourceIp: string, headers: Record<string, string> = {}) => ({
      host: 'frontend',
      path: '/products',
      sourceIp,
      headers,
    });

    it.each([
      ['an IPv4 address inside a blocklisted /24', '192.0.2.55', false],
      ['a blocklisted single address', '198.51.100.66', false],
      ['its neighbour', '198.51.100.67', true],
      ['an IPv6 address inside a blocklisted /48', '2001:db8:bad::1', false],
      ['an IPv6 address just outside it', '2001:db8:bae::1', true],
      ['an unlisted IPv4 address', '203.0.113.9', true],
      ['an IPv4-mapped source from a dual-stack listener', '::ffff:192.0.2.55', false],
    ])('%s (%s) → allowed: %s', async (_label, ip, allowed) => {
      const answer = await server.check(browse(ip));
      if (allowed) expect(answer).toMatchObject({ allowed: true });
      else
        expect(answer).toMatchObject({
          allowed: false,
          status: 403,
          message: 'requests from this network are blocked',
          policies: ['blocklisted-networks'],
        });
    });

    it('matches the client address one trusted hop back in x-forwarded-for, not addresses the client wrote', async () => {
      expect(await server.check(browse('10.0.0.5', { 'x-forwarded-for': '198.51.100.66' }))).toMatchObject({
        allowed: false,
        status: 403,
      });
      // The gateway appended 10.9.9.9; the blocklisted entry to its left came from the client and proves nothing.
      expect(await server.check(browse('10.0.0.5', { 'x-forwarded-for': '192.0.2.1, 10.9.9.9' }))).toMatchObject({
        allowed: true,
      });
    });
  });

  describe('risk step-up (x-risk-score believed only from the gateway)', () => {
    const post = (authorization: string, score: string | undefined, principal = GATEWAY) => ({
      method: 'POST',
      host: 'frontend',
      path: '/cart',
      principal,
      headers: { authorization, ...(score === undefined ? {} : { 'x-risk-score': score }) },
    });

    it('denies a risky session with a step-up message, and lets it through after MFA', async () => {
      const answer = await server.check(post(shopper, '80'));
      expect(answer).toMatchObject({ allowed: false, status: 403, policies: ['high-risk-step-up'] });
      expect(answer.message).toBe(
        'step-up required: this session looks risky; sign in again with a second factor and retry',
      );
      expect(await server.check(post(shopperMfa, '80'))).toMatchObject({ allowed: true });
    });

    it.each([
      ['a low score', '20'],
      ['no score', undefined],
    ])('lets %s through', async (_label, score) => {
      expect(await server.check(post(shopper, score))).toMatchObject({ allowed: true });
    });

    // From the trusted gateway, a score we cannot read is the highest risk, never "no score".
    it.each([
      ['a score out of range', '101'],
      ['a score that is not a number', 'high'],
      ['a decimal score', '95.0'],
      ['a signed score', '+95'],
      ["a score sent twice (the client's 0 plus the gateway's 95)", '0,95'],
    ])('treats %s as the highest risk', async (_label, score) => {
      expect(await server.check(post(shopper, score))).toMatchObject({
        allowed: false,
        status: 403,
        policies: ['high-risk-step-up'],
      });
    });

    it('ignores the header when the sender is not a trusted principal', async () => {
      expect(await otherRiskSource.check(post(shopper, '95'))).toMatchObject({ allowed: true });
    });
  });
});

describe('load shedding on a busy server', () => {
  let dir: Awaited<ReturnType<typeof policyDir>>;
  let server: ContextServer;

  beforeAll(async () => {
    dir = await policyDir({
      'shed.cedar': `
@id("everyone") permit (principal, action, resource);
@id("shed-anonymous") @status("503") @retry_after("5") @message("busy: anonymous requests are shed")
forbid (principal is Anonymous, action, resource) when { context.load >= 50 };
`,
    });
    server = await startContextServer({ policies: dir.dir, loadWindow: '1s' });
  });

  afterAll(async () => {
    await server?.close();
    await dir?.cleanup();
  });

  it('sheds anonymous requests while the event loop is saturated, and keeps serving identified ones', async () => {
    // Keep the loop busy well past the 1 s window, then let the overdue load sample run.
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      /* busy */
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    const anonymous = await server.check({ host: 'api', path: '/' });
    expect(anonymous).toMatchObject({ allowed: false, status: 503, message: 'busy: anonymous requests are shed' });
    expect(anonymous.headers['retry-after']).toBe('5');
    expect(await server.check({ host: 'api', path: '/', principal: GATEWAY })).toMatchObject({ allowed: true });
    expect(await server.metrics()).toMatch(/authz_load_ratio (0|1|0\.\d+)\n/);
    const load = Math.round(Number(/authz_load_ratio ([\d.]+)/.exec(await server.metrics())![1]) * 100);
    expect(load).toBeGreaterThanOrEqual(50);
  });
});
