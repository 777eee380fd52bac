/**
 * The pipeline (src/pipeline/decide-check.ts) with identity and context, as `authz check`
 * runs it: the example policies in policies/, a JwtIdentity over a local key
 * set, and fixed load values.
 */
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { authorizeCheckRequest, type Authorization } from '../../src/pipeline/authorize-input.js';
import { decideCheck } from '../../src/pipeline/decide-check.js';
import { compilePolicyDirectory } from '../../src/bundle/format/compile-policy-directory.js';
import type { ActiveBundle } from '../../src/bundle/active-bundle.js';
import { DEFAULT_FIELD_SETTINGS } from '../../src/context/context-fields.js';
import { DEFAULT_CLAIM_MAPPING } from '../../src/context/jwt-claims.js';
import { JwtIdentity, type JwtResult, type JwtSettings } from '../../src/context/jwt-identity.js';
import { fixedLoad } from '../../src/context/server-load.js';
import { RequestEnricher } from '../../src/context/request-enricher.js';
import { simpleRequestToCheckRequest, type SimpleRequest } from '../../src/envoy/simple-request.js';

const ISSUER = 'https://idp.unit.example/';
const GATEWAY = 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account';

let set: ActiveBundle;
let privateKey: CryptoKey;
let publicJwk: JWK;

function jwtSettings(): JwtSettings {
  return {
    issuers: [
      {
        issuer: ISSUER,
        audiences: ['shop'],
        keys: { kind: 'file', path: 'inline', jwks: { keys: [publicJwk] } },
        algorithms: ['ES256'],
        clockSkewMs: 0,
        mapping: DEFAULT_CLAIM_MAPPING,
      },
    ],
    upstreamMetadata: false,
    ignorePaths: [],
    realm: 'shop',
    jwks: { timeoutMs: 1000, refreshMs: 60_000, cooldownMs: 30_000 },
    clockSkewMs: 0,
  };
}

async function sign(claims: Record<string, unknown>, exp: number | string = '1h', nbf?: number): Promise<string> {
  const jwt = new SignJWT({ sub: 'alice', ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(ISSUER)
    .setAudience('shop')
    .setExpirationTime(exp);
  if (nbf !== undefined) jwt.setNotBefore(nbf);
  return jwt.sign(privateKey);
}

const decide = (req: SimpleRequest, enricher: RequestEnricher): Authorization | Promise<Authorization> =>
  decideCheck(simpleRequestToCheckRequest(req), set, { enricher });

beforeAll(async () => {
  set = await compilePolicyDirectory(path.resolve('policies'));
  const pair = await generateKeyPair('ES256', { extractable: true });
  privateKey = pair.privateKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' };
});

describe('the pipeline with identity', () => {
  it('answers synchronously for a token verified before, and verifies concurrent first sightings once', async () => {
    const results: JwtResult[] = [];
    const enricher = new RequestEnricher(
      new JwtIdentity(jwtSettings(), { onResult: (r) => results.push(r) }),
      DEFAULT_FIELD_SETTINGS,
    );
    const req = {
      host: 'orders',
      path: '/orders/1',
      headers: { authorization: `Bearer ${await sign({ roles: ['support'] })}` },
    };
    const first = decide(req, enricher);
    const second = decide(req, enricher);
    expect(first).toBeInstanceOf(Promise);
    expect(second).toBeInstanceOf(Promise);
    expect((await first).decision).toMatchObject({ kind: 'allow', policies: ['orders-support-read'] });
    expect((await second).decision.kind).toBe('allow');
    const third = decide(req, enricher);
    expect(third).not.toBeInstanceOf(Promise);
    expect((third as Authorization).cedarRequest?.principal).toEqual({ type: 'User', id: 'alice' });
    expect(results).toEqual(['verified', 'cached']);
  });

  it('remembers a permanent rejection but not a token that is merely not valid yet', async () => {
    let now = Date.now();
    const enricher = new RequestEnricher(new JwtIdentity(jwtSettings(), { nowMs: () => now }), DEFAULT_FIELD_SETTINGS);
    const expired = {
      host: 'orders',
      path: '/orders/1',
      headers: { authorization: `Bearer ${await sign({}, Math.floor(now / 1000) - 10)}` },
    };
    expect((await decide(expired, enricher)).decision).toMatchObject({
      kind: 'deny',
      reason: 'unauthenticated',
      status: 401,
    });
    const again = decide(expired, enricher);
    expect(again).not.toBeInstanceOf(Promise);
    expect((again as Authorization).decision.headers['www-authenticate']).toBe(
      'Bearer realm="shop", error="invalid_token", error_description="the token has expired"',
    );

    const early = {
      host: 'orders',
      path: '/orders/1',
      headers: { authorization: `Bearer ${await sign({ roles: ['support'] }, '2h', Math.floor(now / 1000) + 60)}` },
    };
    expect((await decide(early, enricher)).decision).toMatchObject({
      status: 401,
      message: 'the token is not valid yet',
    });
    now += 120_000;
    expect((await decide(early, enricher)).decision.kind).toBe('allow');
  });

  it('expires a cached token at its exp', async () => {
    let now = Date.now();
    const enricher = new RequestEnricher(new JwtIdentity(jwtSettings(), { nowMs: () => now }), DEFAULT_FIELD_SETTINGS);
    const req = {
      host: 'orders',
      path: '/orders/1',
      headers: { authorization: `Bearer ${await sign({ roles: ['support'] }, Math.floor(now / 1000) + 60)}` },
    };
    expect((await decide(req, enricher)).decision.kind).toBe('allow');
    now += 61_000;
    expect((await decide(req, enricher)).decision).toMatchObject({ status: 401, message: 'the token has expired' });
  });

  it('lets a user in the admins group use what the admins group may', async () => {
    const enricher = new RequestEnricher(new JwtIdentity(jwtSettings()), DEFAULT_FIELD_SETTINGS);
    const req = {
      method: 'DELETE',
      host: 'orders',
      path: '/orders/1',
      headers: { authorization: `Bearer ${await sign({ groups: ['admins'] })}` },
    };
    expect((await decide(req, enricher)).decision).toMatchObject({ kind: 'allow', policies: ['admins-full-access'] });
  });
});

describe('the pipeline with context fields', () => {
  const enricherWithLoad = (load: number) =>
    new RequestEnricher(undefined, { ...DEFAULT_FIELD_SETTINGS, load: fixedLoad(load) });
  const lowPriority = { host: 'frontend', path: '/products', contextExtensions: { priority: 'low' } };

  it.each([
    { name: 'anonymous, low priority, load 95', req: lowPriority, load: 95, expected: 503 },
    { name: 'anonymous, low priority, load 89', req: lowPriority, load: 89, expected: 200 },
    {
      name: 'anonymous, normal priority, load 95',
      req: { host: 'frontend', path: '/products' },
      load: 95,
      expected: 200,
    },
    {
      name: 'mesh workload, low priority, load 95',
      req: { ...lowPriority, principal: GATEWAY },
      load: 95,
      expected: 200,
    },
    { name: 'health check, low priority, load 95', req: { ...lowPriority, path: '/healthz' }, load: 95, expected: 200 },
  ])('load shedding example: $name → $expected', ({ req, load, expected }) => {
    const auth = decide(req, enricherWithLoad(load)) as Authorization;
    expect(auth.decision.status).toBe(expected);
    if (expected === 503) expect(auth.decision.headers['retry-after']).toBe('5');
  });

  it('puts every server-computed field in the Cedar context', () => {
    const auth = decide(
      { host: 'frontend', path: '/', sourceIp: '192.0.2.9', time: '2026-03-02T09:00:00Z' },
      enricherWithLoad(12),
    ) as Authorization;
    const ctx = auth.cedarRequest!.context;
    expect(ctx).toMatchObject({ load: 12, hour: 10, weekday: 1 });
    expect((ctx.source as Record<string, unknown>).lists).toEqual(['blocklist']);
    expect(ctx).not.toHaveProperty('risk');
  });

  it('gives callers without an enricher the same complete context (workload principal, load 0)', () => {
    const auth = authorizeCheckRequest(
      simpleRequestToCheckRequest({
        host: 'frontend',
        path: '/',
        sourceIp: '2001:db8:bad::1',
        time: '2026-03-07T09:00:00Z',
      }),
      set,
    );
    expect(auth.decision).toMatchObject({ kind: 'deny', policies: ['blocklisted-networks'] });
    expect(auth.cedarRequest!.context).toMatchObject({ load: 0, hour: 10, weekday: 6 });
  });
});
