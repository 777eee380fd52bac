/**
 * Whatever a client puts in the headers the enrichers read (Authorization,
 * x-forwarded-for, the risk header, a forwarded JWT payload) and whatever
 * addresses and metadata Envoy reports, the pipeline answers with a decision:
 * never a throw, never a rejected promise, and a bearer value it cannot
 * verify is never treated as anonymous.
 */
import path from 'node:path';
import fc from 'fast-check';
import { exportJWK, generateKeyPair } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { decideCheck } from '../../src/pipeline/decide-check.js';
import { compilePolicyDirectory } from '../../src/bundle/format/compile-policy-directory.js';
import type { ActiveBundle } from '../../src/bundle/active-bundle.js';
import { DEFAULT_CLAIM_MAPPING } from '../../src/context/jwt-claims.js';
import { JwtIdentity } from '../../src/context/jwt-identity.js';
import { fixedLoad } from '../../src/context/server-load.js';
import { RequestEnricher } from '../../src/context/request-enricher.js';
import { simpleRequestToCheckRequest } from '../../src/envoy/simple-request.js';
import { REASON_CODES } from '../../src/reasons.js';

const GATEWAY = 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account';
let set: ActiveBundle;
let enricher: RequestEnricher;

beforeAll(async () => {
  set = await compilePolicyDirectory(path.resolve('policies'));
  const { publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256' };
  const identity = new JwtIdentity({
    issuers: [
      {
        issuer: 'https://idp/',
        audiences: ['shop'],
        keys: { kind: 'file', path: 'inline', jwks: { keys: [jwk] } },
        algorithms: ['ES256'],
        clockSkewMs: 0,
        mapping: DEFAULT_CLAIM_MAPPING,
      },
    ],
    upstreamMetadata: true,
    upstreamHeader: 'x-jwt-payload',
    ignorePaths: ['/public/*'],
    realm: 'shop',
    jwks: { timeoutMs: 1000, refreshMs: 60_000, cooldownMs: 30_000 },
    clockSkewMs: 0,
  });
  enricher = new RequestEnricher(identity, {
    trustedHops: 2,
    risk: { header: 'x-risk-score', trustedPrincipals: new Set([GATEWAY]) },
    load: fixedLoad(50),
  });
});

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const tokenish = fc.oneof(
  fc.string(),
  fc.tuple(fc.jsonValue(), fc.jsonValue(), fc.string()).map(([h, p, s]) => `${b64(h)}.${b64(p)}.${s}`),
  fc
    .record({
      iss: fc.constantFrom('https://idp/', 'https://other/'),
      sub: fc.string(),
      aud: fc.constantFrom('shop', 'x'),
      exp: fc.integer(),
    })
    .map((p) => `${b64({ alg: 'ES256', kid: 'k' })}.${b64(p)}.c2ln`),
);
const address = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.ipV4().map((a) => `::ffff:${a}`),
  fc.string(),
  fc.string({ unit: fc.constantFrom(':', '.', '0', '1', 'f', 'F'), maxLength: 12 }),
);

describe('the pipeline with identity and context never fails open or throws', () => {
  it('answers every request with a decision', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          bearer: fc.option(
            tokenish.map((t) => `Bearer ${t}`),
            { nil: undefined },
          ),
          xff: fc.option(
            fc.array(address, { maxLength: 4 }).map((a) => a.join(', ')),
            { nil: undefined },
          ),
          risk: fc.option(fc.string(), { nil: undefined }),
          payloadHeader: fc.option(fc.oneof(fc.string(), fc.jsonValue().map(b64)), { nil: undefined }),
          metadata: fc.option(fc.dictionary(fc.string(), fc.jsonValue()), { nil: undefined }),
          sourceIp: fc.option(address, { nil: undefined }),
          principal: fc.constantFrom(undefined, GATEWAY, 'spiffe://cluster.local/ns/shop/sa/frontend'),
          path: fc.constantFrom('/', '/public/x', '/admin/users', '/orders/1'),
          method: fc.constantFrom('GET', 'POST'),
        }),
        async (r) => {
          const headers: Record<string, string> = {};
          if (r.bearer !== undefined) headers.authorization = r.bearer;
          if (r.xff !== undefined) headers['x-forwarded-for'] = r.xff;
          if (r.risk !== undefined) headers['x-risk-score'] = r.risk;
          if (r.payloadHeader !== undefined) headers['x-jwt-payload'] = r.payloadHeader;
          const req = simpleRequestToCheckRequest({
            method: r.method,
            path: r.path,
            host: 'orders',
            headers,
            principal: r.principal,
            sourceIp: r.sourceIp,
            ...(r.metadata ? { metadata: { 'envoy.filters.http.jwt_authn': r.metadata } } : {}),
          });
          const auth = await decideCheck(req, set, { enricher });
          expect(REASON_CODES).toContain(auth.decision.reason);
          expect(auth.decision.reason).not.toBe('evaluation_error');
          // A bearer token on a route that reads tokens, with nothing trusted upstream, either verified or was refused with 401.
          const upstream =
            r.payloadHeader !== undefined ||
            (r.metadata && Object.values(r.metadata).some((v) => v && typeof v === 'object' && !Array.isArray(v)));
          if (r.bearer !== undefined && !upstream && !r.path.startsWith('/public/')) {
            expect(auth.decision.status).toBe(401);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
