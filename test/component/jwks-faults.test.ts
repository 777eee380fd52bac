/**
 * An identity provider in trouble costs bounded time and bounded fetches,
 * through the real server and a real JWKS endpoint on loopback:
 * - failing (HTTP 500): a flood of tokens naming unknown key ids starts at
 *   most one fetch per cooldown, never two at once;
 * - hanging (never answers): no check waits past its deadline
 *   (--decision-timeout, or Envoy's gRPC deadline: the call would fail with
 *   DEADLINE_EXCEEDED otherwise), and the route's fail mode answers;
 * - weak keys (RSA 1024) are ignored: a token naming one is 401, not 503.
 */
import { createSign, generateKeyPairSync } from 'node:crypto';
import { exportJWK } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Answer,
  AUDIENCE,
  ISSUER,
  JwksServer,
  policyDir,
  signingKey,
  startContextServer,
  token,
  type SigningKey,
  type ContextServer,
} from './context-harness.js';
import type { SimpleRequest } from '../../src/envoy/simple-request.js';

const POLICIES = { 'api.cedar': '@id("users")\npermit (principal is User, action, resource);\n' };
const COOLDOWN_MS = 1000;

let dir: Awaited<ReturnType<typeof policyDir>> | undefined;
let jwks: JwksServer | undefined;
let server: ContextServer | undefined;

afterEach(async () => {
  await server?.close();
  await jwks?.close();
  await dir?.cleanup();
  server = jwks = dir = undefined;
});

async function setUp(
  mode: JwksServer['mode'],
  settings: Record<string, unknown> = {},
): Promise<{ key: SigningKey; startedAt: number }> {
  dir = await policyDir(POLICIES);
  const key = await signingKey('published');
  jwks = new JwksServer();
  jwks.keys = [key.publicJwk];
  jwks.mode = mode;
  const url = await jwks.start();
  const startedAt = Date.now();
  server = await startContextServer({
    policies: dir.dir,
    jwtIssuer: ISSUER,
    jwtAudience: AUDIENCE,
    jwks: url,
    jwksCooldown: `${COOLDOWN_MS}ms`,
    ...settings,
  });
  return { key, startedAt };
}

const request = (bearer: string, failMode?: 'open' | 'closed'): SimpleRequest => ({
  host: 'api',
  path: '/x',
  headers: { authorization: `Bearer ${bearer}` },
  ...(failMode ? { contextExtensions: { fail_mode: failMode } } : {}),
});

/** A token that names a key id the issuer never published (same signing key, so signing is cheap). */
let unknownCount = 0;
const unknownKidToken = (key: SigningKey) => token({ ...key, kid: `unknown-${++unknownCount}` });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `count` checks of tokens with unknown kids, `perBatch` at once, one batch every `everyMs`; their answers. */
async function flood(key: SigningKey, count: number, perBatch: number, everyMs: number): Promise<Answer[]> {
  const all: Promise<Answer>[] = [];
  for (let sent = 0; sent < count; sent += perBatch) {
    for (let i = 0; i < perBatch; i++) all.push(unknownKidToken(key).then((bearer) => server!.check(request(bearer))));
    await sleep(everyMs);
  }
  return Promise.all(all);
}

describe('a failing identity provider', () => {
  it('under a flood of unknown key ids: at most one fetch per cooldown, never two at once, every answer 503', async () => {
    const { key, startedAt } = await setUp('fail');
    const answers = await flood(key, 300, 30, 250);
    const elapsed = Date.now() - startedAt;
    console.info(
      `failing JWKS: 300 tokens with unknown kids in ${elapsed} ms, ${jwks!.requests} fetches (cooldown ${COOLDOWN_MS} ms)`,
    );
    const message = `the signing keys of ${ISSUER} could not be fetched: the key set answered HTTP 500`;
    expect(answers.filter((a) => a.status === 503 && a.message === message)).toHaveLength(300);
    expect(jwks!.requests).toBeGreaterThanOrEqual(2);
    expect(jwks!.requests).toBeLessThanOrEqual(Math.floor(elapsed / COOLDOWN_MS) + 1);
    expect(jwks!.maxOpen).toBe(1);
  }, 30_000);

  it('keys fetched before keep verifying while it fails; unknown key ids still cost one fetch per cooldown', async () => {
    const { key } = await setUp('ok');
    expect(jwks!.requests).toBe(1);
    jwks!.mode = 'fail';
    const floodStart = Date.now();
    const before = jwks!.requests;
    // Within the cooldown of the start-up fetch, an unknown key id is 401 at once; after it, one fetch fails and answers are 503.
    const answers = await flood(key, 120, 20, 200);
    const elapsed = Date.now() - floodStart;
    expect(answers.every((a) => !a.allowed && (a.status === 401 || a.status === 503))).toBe(true);
    expect(answers.some((a) => a.status === 503)).toBe(true);
    expect(jwks!.requests - before).toBeLessThanOrEqual(Math.floor(elapsed / COOLDOWN_MS) + 1);
    expect(await server!.check(request(await token(key, { jti: 'fresh' })))).toMatchObject({ allowed: true });
  }, 30_000);
});

describe('a hanging identity provider', () => {
  it('costs no check more than --decision-timeout: the route fail mode answers, one fetch in flight', async () => {
    const { key } = await setUp('ok', { decisionTimeout: '300ms', jwksTimeout: '5s' });
    jwks!.mode = 'hang';
    await sleep(COOLDOWN_MS); // past the start-up fetch's cooldown: an unknown key id makes the server fetch
    const before = jwks!.requests;
    // Envoy would give up at 2 s; the fetch would take 5 s. The decision timeout answers first.
    const ENVOY_DEADLINE_MS = 2000;
    const answers = await Promise.all(
      Array.from({ length: 40 }, async (_, i) =>
        server!.check(request(await unknownKidToken(key), i % 2 ? 'open' : 'closed'), ENVOY_DEADLINE_MS),
      ),
    );
    const open = answers.filter((_, i) => i % 2);
    const closed = answers.filter((_, i) => i % 2 === 0);
    for (const a of open) expect(a).toMatchObject({ allowed: true, headers: { 'x-authz-fail-open': 'true' } });
    for (const a of closed) {
      expect(a).toMatchObject({
        allowed: false,
        status: 503,
        message: 'the decision could not be made within the 300 ms decision timeout; failing closed',
      });
    }
    expect(jwks!.requests - before).toBe(1);
    expect(jwks!.maxOpen).toBe(1);
    // Known keys do not wait for the hanging fetch.
    const known = await server!.check(request(await token(key, { jti: 'known' }), 'open'), ENVOY_DEADLINE_MS);
    expect(known.allowed).toBe(true);
    expect(known.headers['x-authz-fail-open']).toBeUndefined();
  }, 30_000);

  it("costs no check more than Envoy's gRPC deadline when no decision timeout is set", async () => {
    const { key } = await setUp('ok', { jwksTimeout: '5s' });
    jwks!.mode = 'hang';
    await sleep(COOLDOWN_MS);
    const ENVOY_DEADLINE_MS = 1000;
    // A gRPC error (DEADLINE_EXCEEDED) would reject here: the answer came in time, from the route's fail mode.
    const open = await server!.check(request(await unknownKidToken(key), 'open'), ENVOY_DEADLINE_MS);
    expect(open).toMatchObject({ allowed: true, headers: { 'x-authz-fail-open': 'true' } });
    const closed = await server!.check(request(await unknownKidToken(key), 'closed'), ENVOY_DEADLINE_MS);
    expect(closed).toMatchObject({
      allowed: false,
      status: 503,
      message: 'the decision could not be made before the deadline Envoy set for this check; failing closed',
    });
  }, 30_000);
});

describe('weak keys', () => {
  /** RS256 by hand: jose refuses to sign with an RSA key under 2048 bits (as it refuses to verify). */
  function rs256Token(privateKey: ReturnType<typeof generateKeyPairSync>['privateKey'], kid: string): string {
    const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const signingInput = `${part({ alg: 'RS256', kid, typ: 'JWT' })}.${part({ sub: 'alice', iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 600 })}`;
    const signature = createSign('RSA-SHA256').update(signingInput).sign(privateKey).toString('base64url');
    return `${signingInput}.${signature}`;
  }

  it('an RSA-1024 key in the key set is ignored: its tokens are 401 (not 503) and cost no fetch', async () => {
    const { key } = await setUp('ok');
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    jwks!.keys = [key.publicJwk, { ...(await exportJWK(weak.publicKey)), kid: 'weak', alg: 'RS256', use: 'sig' }];
    await sleep(COOLDOWN_MS);
    // A token of a key not fetched yet: one fetch brings the new set (weak key dropped), the answer is 401.
    const first = await server!.check(request(rs256Token(weak.privateKey, 'weak')));
    expect(first).toMatchObject({
      allowed: false,
      status: 401,
      message: 'the token\'s signing key "weak" is not trusted: an RSA key of 1024 bits (at least 2048 are required)',
    });
    expect(first.headers['www-authenticate']).toContain('error="invalid_token"');
    const fetches = jwks!.requests;
    // Later tokens naming it: 401 at once, no fetch (refetching cannot make a weak key strong).
    for (let i = 0; i < 5; i++)
      expect(await server!.check(request(rs256Token(weak.privateKey, 'weak')))).toMatchObject({
        allowed: false,
        status: 401,
      });
    expect(jwks!.requests).toBe(fetches);
    expect(await server!.check(request(await token(key)))).toMatchObject({ allowed: true });
  }, 30_000);
});
