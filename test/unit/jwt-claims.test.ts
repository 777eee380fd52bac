import { describe, expect, it } from 'vitest';
import {
  claimsToPrincipal,
  claimToCedar,
  DEFAULT_CLAIM_MAPPING,
  MAX_PARENTS_PER_CLAIM,
} from '../../src/context/jwt-claims.js';
import { bearerChallenge, bearerToken } from '../../src/context/jwt-identity.js';

describe('claimsToPrincipal', () => {
  it('makes User::"<sub>" with claims as attributes and groups/roles as parents', () => {
    const p = claimsToPrincipal({
      sub: 'alice',
      iss: 'https://idp/',
      email: 'a@example.com',
      exp: 1767225600,
      groups: ['eng', 'oncall'],
      roles: 'reader writer',
    });
    expect(p).toEqual({
      type: 'User',
      id: 'alice',
      attrs: {
        sub: 'alice',
        iss: 'https://idp/',
        email: 'a@example.com',
        exp: 1767225600,
        groups: ['eng', 'oncall'],
        roles: 'reader writer',
      },
      parents: [
        { type: 'Group', id: 'eng' },
        { type: 'Group', id: 'oncall' },
        { type: 'Role', id: 'reader' },
        { type: 'Role', id: 'writer' },
      ],
    });
  });

  it('follows a configured id claim and nested parent claims', () => {
    const p = claimsToPrincipal(
      { sub: 'x', preferred_username: 'bob', realm_access: { roles: ['admin'] } },
      { principalClaim: 'preferred_username', parentClaims: { 'realm_access.roles': 'Role' } },
    );
    expect(p).toMatchObject({ type: 'User', id: 'bob', parents: [{ type: 'Role', id: 'admin' }] });
  });

  it('says why there is no principal', () => {
    expect(claimsToPrincipal({ iss: 'x' })).toBe('the token has no "sub" claim to identify the user');
    expect(claimsToPrincipal({ sub: '' })).toBe('the token has no "sub" claim to identify the user');
    const many = Array.from({ length: MAX_PARENTS_PER_CLAIM + 1 }, (_, i) => `g${i}`);
    expect(claimsToPrincipal({ sub: 'a', groups: many }, DEFAULT_CLAIM_MAPPING)).toContain('more than');
  });
});

describe('claimToCedar', () => {
  it.each([
    { name: 'string', input: 'x', expected: 'x' },
    { name: 'integer', input: 42, expected: 42 },
    { name: 'fraction has no Cedar form', input: 1.5, expected: undefined },
    { name: 'huge integer has no exact form', input: 2 ** 60, expected: undefined },
    { name: 'null', input: null, expected: undefined },
    { name: 'array drops what has no form', input: ['a', 1.5, 2], expected: ['a', 2] },
    { name: 'record', input: { a: 1, b: { c: true } }, expected: { a: 1, b: { c: true } } },
    {
      name: 'escape keys cannot smuggle an entity',
      input: { __entity: { type: 'Group', id: 'admins' }, ok: 1 },
      expected: { ok: 1 },
    },
  ])('$name', ({ input, expected }) => {
    expect(claimToCedar(input)).toEqual(expected);
  });
});

describe('bearer header and challenge', () => {
  it.each([
    { header: undefined, expected: undefined },
    { header: 'Bearer abc.def.ghi', expected: 'abc.def.ghi' },
    { header: 'bearer   abc ', expected: 'abc' },
    { header: 'Basic dXNlcjpwYXNz', expected: undefined },
    { header: 'Bearer', expected: '' },
    { header: 'Bearer a b', expected: '' },
  ])('$header → $expected', ({ header, expected }) => {
    expect(bearerToken(header)).toBe(expected);
  });

  it('keeps the challenge a valid quoted-string', () => {
    expect(bearerChallenge('my "realm"', 'bad \\ token')).toBe(
      'Bearer realm="my realm", error="invalid_token", error_description="bad  token"',
    );
  });
});
