/**
 * End-user identity through the real server: bearer JWTs verified against a
 * JWKS served over HTTP on loopback, and payloads Envoy verified upstream.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimpleRequest } from '../../src/envoy/simple-request.js';
import {
  AUDIENCE,
  FRONTEND,
  GATEWAY,
  ISSUER,
  JwksServer,
  policyDir,
  signingKey,
  startContextServer,
  token,
  unsignedToken,
  type SigningKey,
  type ContextServer,
} from './context-harness.js';

const POLICIES = {
  'api.cedar': `
@id("me")
permit (principal == User::"alice", action == Action::"GET", resource == Service::"api")
when { context.path == "/me" && context.source.principal == "${FRONTEND}" };

@id("eng")
permit (principal in Group::"eng", action, resource == Service::"api") when { context.path == "/eng" };

@id("readers")
permit (principal in Role::"reader", action == Action::"GET", resource == Service::"api") when { context.path == "/read" };

@id("claims")
permit (principal is User, action, resource == Service::"api")
when { context.path == "/claims" && principal has email && principal.email == "alice@example.com" && principal has level && principal.level == 3 };

@id("public")
permit (principal, action, resource == Service::"api") when { context.path like "/public*" };

@id("login-required")
@status("401")
@message("sign in first")
forbid (principal is Anonymous, action, resource == Service::"api") when { context.path == "/login-required" };
`,
};

const me = (authorization?: string, principal = FRONTEND): SimpleRequest => ({
  host: 'api',
  path: '/me',
  principal,
  headers: authorization ? { authorization } : {},
});

describe('bearer JWTs verified against a JWKS URL', () => {
  let dir: Awaited<ReturnType<typeof policyDir>>;
  let jwks: JwksServer;
  let server: ContextServer;
  let key: SigningKey;

  beforeAll(async () => {
    dir = await policyDir(POLICIES);
    key = await signingKey('key-1', 'RS256');
    jwks = new JwksServer();
    jwks.keys = [key.publicJwk];
    const url = await jwks.start();
    server = await startContextServer({
      policies: dir.dir,
      jwtIssuer: ISSUER,
      jwtAudience: [AUDIENCE],
      jwks: url,
      jwksCooldown: '0ms',
      jwtIgnorePaths: ['/public/ignored*'],
    });
  });

  afterAll(async () => {
    await server?.close();
    await jwks?.close();
    await dir?.cleanup();
  });

  it('a valid token makes the principal User::"<sub>", verified once and then served from the cache', async () => {
    const bearer = `Bearer ${await token(key)}`;
    const fetchesBefore = jwks.requests;
    expect(await server.check(me(bearer))).toMatchObject({ allowed: true });
    expect(await server.check(me(bearer))).toMatchObject({ allowed: true });
    const metrics = await server.metrics();
    expect(metrics).toMatch(/authz_jwt_results_total\{result="verified"\} 1\b/);
    expect(metrics).toMatch(/authz_jwt_results_total\{result="cached"\} 1\b/);
    expect(jwks.requests).toBe(fetchesBefore);
  });

  it('keeps the calling workload in context.source.principal', async () => {
    const answer = await server.check(me(`Bearer ${await token(key)}`, 'spiffe://cluster.local/ns/shop/sa/orders'));
    expect(answer).toMatchObject({ allowed: false, status: 403 });
  });

  it('maps the groups and roles claims to Group and Role parents', async () => {
    const eng = await token(key, { groups: ['eng', 'oncall'] });
    const readers = await token(key, { roles: ['reader'] });
    const plain = await token(key);
    expect(
      await server.check({ host: 'api', path: '/eng', headers: { authorization: `Bearer ${eng}` } }),
    ).toMatchObject({ allowed: true });
    expect(
      await server.check({ host: 'api', path: '/eng', headers: { authorization: `Bearer ${plain}` } }),
    ).toMatchObject({ allowed: false, status: 403 });
    expect(
      await server.check({ host: 'api', path: '/read', headers: { authorization: `Bearer ${readers}` } }),
    ).toMatchObject({ allowed: true });
    expect(
      await server.check({ host: 'api', path: '/read', headers: { authorization: `Bearer ${eng}` } }),
    ).toMatchObject({ allowed: false, status: 403 });
  });

  it('exposes claims as attributes of the user', async () => {
    const rich = await token(key, { email: 'alice@example.com', level: 3 });
    const other = await token(key, { email: 'alice@example.com', level: 2 });
    expect(
      await server.check({ host: 'api', path: '/claims', headers: { authorization: `Bearer ${rich}` } }),
    ).toMatchObject({ allowed: true });
    expect(
      await server.check({ host: 'api', path: '/claims', headers: { authorization: `Bearer ${other}` } }),
    ).toMatchObject({ allowed: false });
  });

  it('denies an expired token with 401 and a WWW-Authenticate challenge', async () => {
    const expired = await token(key, {}, { expiresIn: Math.floor(Date.now() / 1000) - 3600 });
    const answer = await server.check(me(`Bearer ${expired}`));
    expect(answer).toMatchObject({ allowed: false, status: 401, message: 'the token has expired' });
    expect(answer.headers['www-authenticate']).toBe(
      'Bearer realm="authz", error="invalid_token", error_description="the token has expired"',
    );
  });

  it('denies a token minted for another audience', async () => {
    const answer = await server.check(me(`Bearer ${await token(key, {}, { audience: 'billing-api' })}`));
    expect(answer).toMatchObject({
      allowed: false,
      status: 401,
      message: 'the token was not issued for this audience',
    });
    expect(answer.headers['www-authenticate']).toContain('error="invalid_token"');
  });

  it('denies a token signed by a key the issuer does not publish (unknown kid), after refetching the key set', async () => {
    const stranger = await signingKey('not-published');
    const fetchesBefore = jwks.requests;
    const answer = await server.check(me(`Bearer ${await token(stranger)}`));
    expect(answer).toMatchObject({ allowed: false, status: 401 });
    expect(answer.message).toContain('unknown key id');
    expect(jwks.requests).toBe(fetchesBefore + 1);
  });

  it('denies a token whose signature does not match the published key', async () => {
    const impostor = await signingKey('key-1', 'RS256'); // same kid and algorithm, different key pair
    const answer = await server.check(me(`Bearer ${await token(impostor)}`));
    expect(answer).toMatchObject({ allowed: false, status: 401, message: 'the token signature is invalid' });
  });

  it('refuses the "none" algorithm', async () => {
    const none = unsignedToken({ sub: 'alice', iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 3600 });
    const answer = await server.check(me(`Bearer ${none}`));
    expect(answer).toMatchObject({ allowed: false, status: 401 });
    expect(answer.headers['www-authenticate']).toMatch(/^Bearer realm="authz", error="invalid_token"/);
  });

  it('refuses tokens of an issuer it does not trust, and bearer values that are not JWTs', async () => {
    const foreign = await token(key, {}, { issuer: 'https://elsewhere.example/' });
    expect(await server.check(me(`Bearer ${foreign}`))).toMatchObject({
      allowed: false,
      status: 401,
      message: 'the token was not issued by a trusted issuer',
    });
    expect(await server.check(me('Bearer not-a-jwt'))).toMatchObject({
      allowed: false,
      status: 401,
      message: 'the bearer token is not a well-formed JWT',
    });
    expect(await server.check(me('Bearer'))).toMatchObject({ allowed: false, status: 401 });
  });

  it('leaves other schemes alone and adds the challenge to a 401 a policy returns', async () => {
    const basic = await server.check({
      host: 'api',
      path: '/public/x',
      headers: { authorization: 'Basic YWxpY2U6c2VjcmV0' },
    });
    expect(basic).toMatchObject({ allowed: true });
    const anonymous = await server.check({ host: 'api', path: '/login-required' });
    expect(anonymous).toMatchObject({ allowed: false, status: 401, message: 'sign in first' });
    expect(anonymous.headers['www-authenticate']).toBe('Bearer realm="authz"');
  });

  it('ignores tokens on routes configured to ignore them (context extension or path)', async () => {
    const expired = `Bearer ${await token(key, {}, { expiresIn: Math.floor(Date.now() / 1000) - 3600 })}`;
    const byExtension = await server.check({
      host: 'api',
      path: '/public/page',
      headers: { authorization: expired },
      contextExtensions: { jwt: 'ignore' },
    });
    expect(byExtension).toMatchObject({ allowed: true });
    const byPath = await server.check({ host: 'api', path: '/public/ignored/x', headers: { authorization: expired } });
    expect(byPath).toMatchObject({ allowed: true });
    // Ignored means anonymous, not the user the token names.
    const valid = `Bearer ${await token(key)}`;
    expect(await server.check({ ...me(valid), contextExtensions: { jwt: 'ignore' } })).toMatchObject({
      allowed: false,
      status: 403,
    });
    // The same expired token elsewhere is still a 401.
    expect(
      await server.check({ host: 'api', path: '/public/page', headers: { authorization: expired } }),
    ).toMatchObject({ allowed: false, status: 401 });
  });
});

describe('key rotation through JWKS refresh', () => {
  let dir: Awaited<ReturnType<typeof policyDir>>;
  let jwks: JwksServer;
  let server: ContextServer;

  beforeAll(async () => {
    dir = await policyDir(POLICIES);
    jwks = new JwksServer();
    const url = await jwks.start();
    jwks.keys = [(await signingKey('placeholder')).publicJwk];
    server = await startContextServer({
      policies: dir.dir,
      jwtIssuer: ISSUER,
      jwtAudience: AUDIENCE,
      jwks: url,
      jwksCooldown: '0ms',
    });
  });

  afterAll(async () => {
    await server?.close();
    await jwks?.close();
    await dir?.cleanup();
  });

  it('accepts a token of a newly published key and refuses new tokens of a retired one', async () => {
    const oldKey = await signingKey('2026-01');
    const newKey = await signingKey('2026-02');
    jwks.keys = [oldKey.publicJwk];
    const before = `Bearer ${await token(oldKey)}`;
    // The server fetched the key set at start-up (placeholder key): old-key tokens need a refresh too.
    expect(await server.check(me(before))).toMatchObject({ allowed: true });

    jwks.keys = [newKey.publicJwk];
    expect(await server.check(me(`Bearer ${await token(newKey)}`))).toMatchObject({ allowed: true });
    const lateOldToken = await server.check(me(`Bearer ${await token(oldKey, { jti: 'minted-after-rotation' })}`));
    expect(lateOldToken).toMatchObject({ allowed: false, status: 401 });
    // A token verified before the rotation stays valid until it expires (it is cached).
    expect(await server.check(me(before))).toMatchObject({ allowed: true });
  });
});

describe('when the key set cannot be fetched', () => {
  let dir: Awaited<ReturnType<typeof policyDir>>;
  let server: ContextServer;

  beforeAll(async () => {
    dir = await policyDir(POLICIES);
    // A port that was just free: connections are refused.
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    server = await startContextServer({
      policies: dir.dir,
      jwtIssuer: ISSUER,
      jwtAudience: AUDIENCE,
      jwks: `http://127.0.0.1:${port}/jwks.json`,
    });
  });

  afterAll(async () => {
    await server?.close();
    await dir?.cleanup();
  });

  it('answers 503 identity_unavailable (the issuer is at fault, not the caller) and still serves token-less requests', async () => {
    const key = await signingKey('k');
    const answer = await server.check(me(`Bearer ${await token(key)}`));
    expect(answer).toMatchObject({ allowed: false, status: 503 });
    expect(answer.message).toContain(`the signing keys of ${ISSUER} could not be fetched`);
    expect(await server.check({ host: 'api', path: '/public/x' })).toMatchObject({ allowed: true });
  });
});

describe('payloads verified upstream by Envoy', () => {
  let dir: Awaited<ReturnType<typeof policyDir>>;
  let trusting: ContextServer;
  let plain: ContextServer;
  const future = () => Math.floor(Date.now() / 1000) + 600;
  const metadata = (payload: Record<string, unknown>) => ({ 'envoy.filters.http.jwt_authn': { [ISSUER]: payload } });

  beforeAll(async () => {
    dir = await policyDir(POLICIES);
    trusting = await startContextServer({
      policies: dir.dir,
      jwtUpstreamMetadata: true,
      jwtUpstreamHeader: 'x-jwt-payload',
      jwtUpstreamIssuers: [ISSUER],
      jwtUpstreamTrustedPrincipal: [GATEWAY],
    });
    plain = await startContextServer({ policies: dir.dir });
  });

  afterAll(async () => {
    await trusting?.close();
    await plain?.close();
    await dir?.cleanup();
  });

  it('trusts jwt_authn metadata only when configured to', async () => {
    const req = {
      host: 'api',
      path: '/eng',
      metadata: metadata({ iss: ISSUER, sub: 'bob', groups: ['eng'], exp: future() }),
    };
    expect(await trusting.check(req)).toMatchObject({ allowed: true });
    expect(await plain.check(req)).toMatchObject({ allowed: false, status: 403 });
  });

  it('trusts a forwarded payload header only from the configured principal, and still checks exp', async () => {
    const header = (p: object) => Buffer.from(JSON.stringify(p)).toString('base64url');
    const good = {
      host: 'api',
      path: '/eng',
      principal: GATEWAY,
      headers: { 'x-jwt-payload': header({ iss: ISSUER, sub: 'bob', groups: ['eng'], exp: future() }) },
    };
    expect(await trusting.check(good)).toMatchObject({ allowed: true });
    expect(await plain.check(good)).toMatchObject({ allowed: false, status: 403 });
    // The same header from the frontend (or a caller without mTLS) is something a client wrote: no user.
    expect(await trusting.check({ ...good, principal: FRONTEND })).toMatchObject({ allowed: false, status: 403 });
    expect(await trusting.check({ ...good, principal: undefined })).toMatchObject({ allowed: false, status: 403 });
    const stale = {
      ...good,
      headers: { 'x-jwt-payload': header({ iss: ISSUER, sub: 'bob', groups: ['eng'], exp: 1_000_000 }) },
    };
    expect(await trusting.check(stale)).toMatchObject({
      allowed: false,
      status: 401,
      message: 'the token has expired',
    });
    const garbage = { ...good, headers: { 'x-jwt-payload': '%%%' } };
    expect(await trusting.check(garbage)).toMatchObject({ allowed: false, status: 401 });
  });

  it('refuses an upstream payload without exp or from an unconfigured issuer', async () => {
    const header = (p: object) => Buffer.from(JSON.stringify(p)).toString('base64url');
    const noExp = {
      host: 'api',
      path: '/eng',
      principal: GATEWAY,
      headers: { 'x-jwt-payload': header({ iss: ISSUER, sub: 'bob', groups: ['eng'] }) },
    };
    expect(await trusting.check(noExp)).toMatchObject({
      allowed: false,
      status: 401,
      message: 'the verified token has no "exp" claim',
    });
    const otherIssuer = {
      ...noExp,
      headers: {
        'x-jwt-payload': header({ iss: 'https://evil.example/', sub: 'bob', groups: ['eng'], exp: future() }),
      },
    };
    expect(await trusting.check(otherIssuer)).toMatchObject({
      allowed: false,
      status: 401,
      message: 'the verified token was not issued by a configured issuer',
    });
    const noExpMeta = { host: 'api', path: '/eng', metadata: metadata({ iss: ISSUER, sub: 'bob', groups: ['eng'] }) };
    expect(await trusting.check(noExpMeta)).toMatchObject({
      allowed: false,
      status: 401,
      message: 'the verified token has no "exp" claim',
    });
    const otherMeta = {
      host: 'api',
      path: '/eng',
      metadata: {
        'envoy.filters.http.jwt_authn': {
          'https://evil.example/': { iss: 'https://evil.example/', sub: 'bob', groups: ['eng'], exp: future() },
        },
      },
    };
    expect(await trusting.check(otherMeta)).toMatchObject({
      allowed: false,
      status: 401,
      message: 'the verified token was not issued by a configured issuer',
    });
  });
});
