/**
 * What identity and context cost per request, measured in-process (no gRPC):
 *
 *   npx tsx bench/context-enrichment.ts
 *
 * Rows: the plain pipeline as before this feature (workload principal), the
 * full pipeline with the default enricher, with a cached bearer token, and
 * the parts alone (context fields with a 100 000-entry IP list, first-sight
 * JWT verification). Numbers are per call, median of several rounds.
 */
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { authorizeCheckRequest, type Authorization } from '../src/pipeline/authorize-input.js';
import { decideCheck } from '../src/pipeline/decide-check.js';
import { compilePolicyDirectory } from '../src/bundle/format/compile-policy-directory.js';
import { contextFields, DEFAULT_FIELD_SETTINGS } from '../src/context/context-fields.js';
import { IpListIndex } from '../src/context/ip-lists.js';
import { DEFAULT_CLAIM_MAPPING } from '../src/context/jwt-claims.js';
import { JwtIdentity, type JwtSettings } from '../src/context/jwt-identity.js';
import { RequestEnricher } from '../src/context/request-enricher.js';
import { checkRequestToInput } from '../src/envoy/check-request.js';
import { simpleRequestToCheckRequest } from '../src/envoy/simple-request.js';

const ISSUER = 'https://idp.bench.example/';

function measure(name: string, iterations: number, fn: () => unknown): void {
  for (let i = 0; i < Math.min(iterations, 2000); i++) fn();
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn();
    rounds.push(Number(process.hrtime.bigint() - start) / iterations / 1000);
  }
  rounds.sort((a, b) => a - b);
  console.log(`${name.padEnd(58)} ${rounds[2].toFixed(2).padStart(8)} µs/op`);
}

async function measureAsync(name: string, iterations: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) await fn(i);
  console.log(
    `${name.padEnd(58)} ${(Number(process.hrtime.bigint() - start) / iterations / 1000).toFixed(2).padStart(8)} µs/op`,
  );
}

function randomPrefixes(n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const w = (Math.random() * 0xffffffff) >>> 0;
    const len = 16 + Math.floor(Math.random() * 17);
    const m = len === 32 ? w : (w & (0xffffffff << (32 - len))) >>> 0;
    lines.push(`${[24, 16, 8, 0].map((s) => (m >>> s) & 0xff).join('.')}/${len}`);
  }
  return lines.join('\n');
}

const set = await compilePolicyDirectory(path.resolve('policies'));
const pair = await generateKeyPair('ES256', { extractable: true });
const rsa = await generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'es', alg: 'ES256' };
const rsaJwk = { ...(await exportJWK(rsa.publicKey)), kid: 'rs', alg: 'RS256' };
const settings: JwtSettings = {
  issuers: [
    {
      issuer: ISSUER,
      audiences: ['shop'],
      keys: { kind: 'file', path: 'inline', jwks: { keys: [jwk, rsaJwk] } },
      algorithms: ['ES256', 'RS256'],
      clockSkewMs: 30_000,
      mapping: DEFAULT_CLAIM_MAPPING,
    },
  ],
  upstreamMetadata: false,
  ignorePaths: [],
  realm: 'bench',
  jwks: { timeoutMs: 1000, refreshMs: 600_000, cooldownMs: 30_000 },
  clockSkewMs: 30_000,
};
const sign = (claims: Record<string, unknown>, alg: 'ES256' | 'RS256' = 'ES256') =>
  new SignJWT({ sub: 'alice', roles: ['support'], ...claims })
    .setProtectedHeader({ alg, kid: alg === 'ES256' ? 'es' : 'rs' })
    .setIssuer(ISSUER)
    .setAudience('shop')
    .setExpirationTime('1h')
    .sign(alg === 'ES256' ? pair.privateKey : rsa.privateKey);

const workloadReq = simpleRequestToCheckRequest({
  host: 'orders',
  path: '/orders/42',
  principal: 'spiffe://cluster.local/ns/shop/sa/frontend',
  sourceIp: '10.1.2.3',
  headers: { 'user-agent': 'bench', 'x-request-id': 'r-1' },
});
const userReq = simpleRequestToCheckRequest({
  host: 'orders',
  path: '/orders/42',
  principal: 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account',
  sourceIp: '10.1.2.3',
  headers: { 'user-agent': 'bench', 'x-request-id': 'r-1', authorization: `Bearer ${await sign({})}` },
});

const plain = new RequestEnricher(undefined, DEFAULT_FIELD_SETTINGS);
const withJwt = new RequestEnricher(new JwtIdentity(settings), { ...DEFAULT_FIELD_SETTINGS, trustedHops: 1 });
await decideCheck(userReq, set, { enricher: withJwt }); // verify once; later calls hit the cache
const check = (a: Authorization | Promise<Authorization>): Authorization => {
  if (a instanceof Promise) throw new Error('expected a synchronous answer');
  if (a.decision.kind !== 'allow') throw new Error(`expected allow, got ${a.decision.reason}: ${a.decision.message}`);
  return a;
};

console.log(
  `node ${process.version}, example policies (${set.policySet.policies.size} policies), ${new Date().toISOString()}`,
);
measure('pipeline, workload principal (authorizeCheckRequest)', 20_000, () =>
  check(authorizeCheckRequest(workloadReq, set)),
);
measure('pipeline + enricher, workload principal', 20_000, () =>
  check(decideCheck(workloadReq, set, { enricher: plain })),
);
measure('pipeline + enricher, user with cached bearer token', 20_000, () =>
  check(decideCheck(userReq, set, { enricher: withJwt })),
);

const input = (checkRequestToInput(workloadReq) as { ok: true; input: Parameters<typeof contextFields>[0] }).input;
measure('context fields alone, example lists (3 entries)', 200_000, () => contextFields(input, set));
const compileStart = performance.now();
const bigLists = IpListIndex.compile([
  { name: 'feed', text: randomPrefixes(100_000) },
  { name: 'tor-exit', text: randomPrefixes(2_000) },
]);
console.log(
  `${'compile 102 000 IPv4 prefixes into the trie'.padEnd(58)} ${(performance.now() - compileStart).toFixed(0).padStart(8)} ms`,
);
const bigSet = { ...set, ipLists: bigLists };
measure('context fields alone, 102 000-entry lists', 200_000, () => contextFields(input, bigSet));
let n = 0;
measure('IpListIndex.match, random IPv4 against 102 000 entries', 200_000, () =>
  bigLists.match(`${(n++ >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}.7`),
);

const freshEs = await Promise.all(Array.from({ length: 300 }, (_, i) => sign({ jti: `es-${i}` })));
const freshRs = await Promise.all(Array.from({ length: 300 }, (_, i) => sign({ jti: `rs-${i}` }, 'RS256')));
const verifier = new JwtIdentity(settings);
const model = input as unknown as Parameters<JwtIdentity['resolve']>[0];
await measureAsync('first-sight verification, ES256 (jose)', freshEs.length, (i) =>
  Promise.resolve(verifier.resolve({ ...model, headers: { authorization: `Bearer ${freshEs[i]}` } })),
);
await measureAsync('first-sight verification, RS256 (jose)', freshRs.length, (i) =>
  Promise.resolve(verifier.resolve({ ...model, headers: { authorization: `Bearer ${freshRs[i]}` } })),
);
