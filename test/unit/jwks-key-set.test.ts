/**
 * Which keys of a JWKS are fit to verify tokens with: RSA under 2048 bits and
 * symmetric keys are dropped (and remembered by kid, so a token naming only
 * them is refused without a fetch); a fetched body must be a JWKS.
 */
import type { JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { parseJwks, usableKeys } from '../../src/context/jwks-key-set.js';

/** An RSA public JWK whose modulus has exactly `bits` bits (only its size matters here; generating real keys is slow). */
function rsa(bits: number, kid: string): JWK {
  const n = Buffer.alloc(Math.ceil(bits / 8), 0xff);
  n[0] = 0xff >> (n.length * 8 - bits);
  return { kty: 'RSA', e: 'AQAB', n: n.toString('base64url'), kid };
}

describe('usableKeys', () => {
  it('keeps RSA keys of 2048 bits and more, EC and OKP keys; drops smaller RSA and symmetric keys with the reason', () => {
    const ec = {
      kty: 'EC',
      crv: 'P-256',
      x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
      y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
      kid: 'ec',
    };
    const ed = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo', kid: 'ed' };
    const keys = [
      rsa(1024, 'rsa-1024'),
      rsa(2047, 'rsa-2047'),
      rsa(2048, 'rsa-2048'),
      rsa(3072, 'rsa-3072'),
      ec,
      ed,
      { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' },
    ];
    const { jwks, weak } = usableKeys({ keys });
    expect(jwks.keys.map((k) => k.kid)).toEqual(['rsa-2048', 'rsa-3072', 'ec', 'ed']);
    expect(Object.fromEntries(weak)).toEqual({
      'rsa-1024': 'an RSA key of 1024 bits (at least 2048 are required)',
      'rsa-2047': 'an RSA key of 2047 bits (at least 2048 are required)',
      hmac: 'a symmetric key',
    });
  });

  it('does not call a kid weak when a usable key shares it', () => {
    const { weak } = usableKeys({ keys: [rsa(1024, 'k'), rsa(2048, 'k')] });
    expect(weak.size).toBe(0);
  });
});

describe('parseJwks', () => {
  const rows = [
    { name: 'not JSON', text: '<html>', error: 'the key set is not JSON' },
    { name: 'no keys array', text: '{"keys": {}}', error: 'the key set is not a JWKS ({"keys": [...]})' },
    {
      name: 'a key that is not an object',
      text: '{"keys": [1]}',
      error: 'the key set is not a JWKS ({"keys": [...]})',
    },
  ];
  for (const row of rows) it(`refuses ${row.name}`, () => expect(() => parseJwks(row.text)).toThrow(row.error));
  it('accepts an empty key set (an issuer between rotations)', () =>
    expect(parseJwks('{"keys": []}')).toEqual({ keys: [] }));
});
