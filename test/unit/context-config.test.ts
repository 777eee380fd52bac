import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load-config.js';
import { jwtSettingsFromConfig, fieldSettingsFromConfig } from '../../src/wiring/context-from-config.js';

const load = (flags: Record<string, unknown>, env: Record<string, string> = {}, file?: string) =>
  loadConfig({ flags, env, file });

describe('identity and context settings', () => {
  let dir: string;
  let jwksFile: string;
  let yamlFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'authz-cfg-'));
    jwksFile = path.join(dir, 'jwks.json');
    await writeFile(
      jwksFile,
      JSON.stringify({
        keys: [
          {
            kty: 'EC',
            crv: 'P-256',
            x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
            y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
            kid: 'k1',
          },
        ],
      }),
    );
    yamlFile = path.join(dir, 'authz.yaml');
    await writeFile(
      yamlFile,
      [
        'jwtIssuers:',
        '  - issuer: https://login.example.com/',
        '    audiences: [shop, admin]',
        `    jwks: ${jwksFile}`,
        '    algorithms: [ES256]',
        '    principalClaim: email',
        '    parentClaims: { "realm_access.roles": Role }',
        '  - issuer: https://partners.example.com/',
        '    audience: shop',
        '    jwks: https://partners.example.com/.well-known/jwks.json',
        'jwtUpstreamMetadata: true',
        'riskHeader: X-Risk-Score',
        'riskTrustedPrincipal:',
        '  - spiffe://cluster.local/ns/risk/sa/engine',
        'trustedHops: 2',
        'loadWindow: 10s',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('has defaults that leave everything off', async () => {
    const c = load({});
    expect(c).toMatchObject({
      jwtIssuers: [],
      trustedHops: 0,
      riskTrustedPrincipal: [],
      jwtClockSkew: 30_000,
      jwksRefresh: 600_000,
      loadWindow: 5000,
    });
    expect(await jwtSettingsFromConfig(c)).toBeUndefined();
    expect(fieldSettingsFromConfig(c).risk).toBeUndefined();
  });

  it('takes the single-issuer flags', async () => {
    const c = load({
      jwtIssuer: 'https://idp/',
      jwtAudience: ['a', 'b'],
      jwks: jwksFile,
      riskHeader: 'X-Risk',
      riskTrustedPrincipal: ['spiffe://gw'],
      trustedHops: '1',
    });
    const jwt = await jwtSettingsFromConfig(c);
    expect(jwt?.issuers).toHaveLength(1);
    expect(jwt?.issuers[0]).toMatchObject({
      issuer: 'https://idp/',
      audiences: ['a', 'b'],
      keys: { kind: 'file', path: jwksFile },
      mapping: { principalClaim: 'sub', parentClaims: { groups: 'Group', roles: 'Role' } },
    });
    const fields = fieldSettingsFromConfig(c);
    expect(fields.trustedHops).toBe(1);
    expect(fields.risk?.header).toBe('x-risk');
    expect([...fields.risk!.trustedPrincipals]).toEqual(['spiffe://gw']);
  });

  it('takes several issuers and claim mappings from YAML', async () => {
    const c = load({}, {}, yamlFile);
    const jwt = await jwtSettingsFromConfig(c);
    expect(jwt?.upstreamMetadata).toBe(true);
    expect(
      jwt?.issuers.map((i) => [i.issuer, i.audiences, i.keys.kind, i.algorithms, i.mapping.principalClaim]),
    ).toEqual([
      ['https://login.example.com/', ['shop', 'admin'], 'file', ['ES256'], 'email'],
      ['https://partners.example.com/', ['shop'], 'url', expect.arrayContaining(['RS256', 'ES256']), 'sub'],
    ]);
    expect(jwt?.issuers[0].mapping.parentClaims).toEqual({ 'realm_access.roles': 'Role' });
    expect(c.trustedHops).toBe(2);
    expect(c.loadWindow).toBe(10_000);
  });

  it('reads lists from the environment as comma-separated values', () => {
    const c = load(
      {},
      {
        AUTHZ_RISK_HEADER: 'x-risk',
        AUTHZ_RISK_TRUSTED_PRINCIPAL: 'spiffe://a, spiffe://b',
        AUTHZ_JWT_IGNORE_PATHS: '/healthz,/public/*',
      },
    );
    expect(c.riskTrustedPrincipal).toEqual(['spiffe://a', 'spiffe://b']);
    expect(c.jwtIgnorePaths).toEqual(['/healthz', '/public/*']);
  });

  it.each([
    {
      name: 'issuer without keys',
      flags: { jwtIssuer: 'https://idp/', jwtAudience: ['a'] },
      message: 'jwks: required when jwtIssuer is set',
    },
    {
      name: 'issuer without audience',
      flags: { jwtIssuer: 'https://idp/', jwks: 'k.json' },
      message: 'jwtAudience: required when jwtIssuer is set',
    },
    { name: 'keys without issuer', flags: { jwks: 'k.json' }, message: 'jwks: set jwtIssuer too' },
    { name: 'the none algorithm', flags: { jwtAlgorithms: 'none' }, message: 'jwtAlgorithms.0: expected one of RS256' },
    {
      name: 'a bad JWKS URL',
      flags: { jwtIssuer: 'i', jwtAudience: ['a'], jwks: 'https://' },
      message: 'jwks: "https://" is not a valid URL',
    },
    {
      name: 'trusted principals without a header',
      flags: { riskTrustedPrincipal: ['spiffe://gw'] },
      message: 'riskTrustedPrincipal: set riskHeader too',
    },
    {
      name: 'upstream payloads without any accepted issuer',
      flags: { jwtUpstreamMetadata: true },
      message: 'jwtUpstreamIssuers: name the issuers',
    },
    {
      name: 'a payload header without the principals that may send it',
      flags: { jwtUpstreamHeader: 'x-jwt-payload', jwtUpstreamIssuers: ['https://idp/'] },
      message: 'jwtUpstreamTrustedPrincipal: required with jwtUpstreamHeader',
    },
    {
      name: 'payload principals without a payload header',
      flags: {
        jwtUpstreamMetadata: true,
        jwtUpstreamIssuers: ['https://idp/'],
        jwtUpstreamTrustedPrincipal: ['spiffe://gw'],
      },
      message: 'jwtUpstreamTrustedPrincipal: set jwtUpstreamHeader too',
    },
    {
      name: 'upstream issuers without upstream trust',
      flags: { jwtUpstreamIssuers: ['https://idp/'] },
      message: 'jwtUpstreamIssuers: set jwtUpstreamMetadata or jwtUpstreamHeader too',
    },
    {
      name: 'a header name with spaces',
      flags: { riskHeader: 'x risk' },
      message: 'riskHeader: expected an HTTP header name',
    },
    { name: 'negative hops', flags: { trustedHops: '-1' }, message: 'trustedHops' },
    { name: 'too many hops', flags: { trustedHops: '99' }, message: 'trustedHops' },
    { name: 'a bad duration', flags: { loadWindow: 'soon' }, message: 'loadWindow: expected a duration' },
    {
      name: 'a parent type that is not a Cedar type',
      flags: { jwtParentClaims: { groups: 'not a type' } },
      message: 'jwtParentClaims.groups: expected a Cedar entity type',
    },
  ])('stops start-up naming the field: $name', ({ flags, message }) => {
    expect(() => load(flags)).toThrow(ConfigError);
    expect(() => load(flags)).toThrow(message);
  });

  it('names the origin of a bad value', () => {
    expect(() => load({}, { AUTHZ_TRUSTED_HOPS: 'many' })).toThrow(
      /trustedHops: .*\(from environment AUTHZ_TRUSTED_HOPS\)/,
    );
  });

  it('refuses an issuer listed twice and one without an audience', () => {
    expect(() =>
      load({
        jwtIssuer: 'https://idp/',
        jwtAudience: ['a'],
        jwks: jwksFile,
        jwtIssuers: [{ issuer: 'https://idp/', audience: 'a', jwks: jwksFile }],
      }),
    ).toThrow('jwtIssuers.0.issuer: issuer "https://idp/" is configured twice');
    expect(() => load({ jwtIssuers: [{ issuer: 'https://idp/', jwks: jwksFile }] })).toThrow(
      'jwtIssuers.0.audiences: at least one audience is required',
    );
  });

  it('stops start-up when a JWKS file cannot be read, naming the setting', async () => {
    const c = load({ jwtIssuer: 'https://idp/', jwtAudience: ['a'], jwks: path.join(dir, 'missing.json') });
    await expect(jwtSettingsFromConfig(c)).rejects.toThrow(/^jwks: cannot read the JWKS file/);
    await writeFile(path.join(dir, 'empty.json'), '{"keys": []}');
    const empty = load({ jwtIssuers: [{ issuer: 'https://idp/', audience: 'a', jwks: path.join(dir, 'empty.json') }] });
    await expect(jwtSettingsFromConfig(empty)).rejects.toThrow(/^jwtIssuers\.0\.jwks: .* is not a JWKS/);
    await writeFile(path.join(dir, 'junk.json'), '{"keys": ["x"]}');
    const junk = load({ jwtIssuer: 'https://idp/', jwtAudience: ['a'], jwks: path.join(dir, 'junk.json') });
    await expect(jwtSettingsFromConfig(junk)).rejects.toThrow(/^jwks: .* is not a usable JWKS/);
    const { generateKeyPairSync } = await import('node:crypto');
    const { exportJWK } = await import('jose');
    const weak = await exportJWK(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey);
    await writeFile(path.join(dir, 'weak.json'), JSON.stringify({ keys: [{ ...weak, kid: 'old' }] }));
    const onlyWeak = load({ jwtIssuer: 'https://idp/', jwtAudience: ['a'], jwks: path.join(dir, 'weak.json') });
    await expect(jwtSettingsFromConfig(onlyWeak)).rejects.toThrow(
      /^jwks: .* holds no usable key \(RSA keys under 2048 bits and symmetric keys are ignored\)/,
    );
  });
});
