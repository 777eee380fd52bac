/**
 * `authz check` reads identity and context settings like `serve` does, so a
 * request decided on the command line is decided the same way by the server.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { checkCommand } from '../../src/cli/check-command.js';
import { parseCommandArgs } from '../../src/cli/command-framework.js';
import { AUDIENCE, ISSUER, signingKey, token, type SigningKey } from './context-harness.js';

async function runCheck(argv: string[]): Promise<{ code: number; out: string }> {
  const chunks: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    chunks.push(String(chunk));
    return true;
  });
  try {
    const { values, positionals } = parseCommandArgs(checkCommand, argv);
    const code = await checkCommand.run(values, positionals);
    return { code, out: chunks.join('') };
  } finally {
    spy.mockRestore();
  }
}

describe('authz check with identity and context', () => {
  let dir: string;
  let jwks: string;
  let key: SigningKey;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'authz-cli-'));
    key = await signingKey('cli-1');
    jwks = path.join(dir, 'jwks.json');
    await writeFile(jwks, JSON.stringify({ keys: [key.publicJwk] }));
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('verifies a bearer token against a JWKS file and shows the user principal and context', async () => {
    const bearer = `authorization: Bearer ${await token(key, { roles: ['support'] })}`;
    const { code, out } = await runCheck([
      '--policies',
      'policies',
      '--host',
      'orders',
      '--path',
      '/orders/7',
      '--header',
      bearer,
      '--jwt-issuer',
      ISSUER,
      '--jwt-audience',
      AUDIENCE,
      '--jwks',
      jwks,
      '--time',
      '2026-03-02T09:00:00Z',
    ]);
    expect(code).toBe(0);
    expect(out).toContain('principal:  User::"alice"');
    expect(out).toContain('context:    hour=10 weekday=1 load=0 risk=(none) source.lists=[]');
  });

  it('answers 401 for an expired token when an issuer is configured, and ignores the header when none is', async () => {
    const expired = `authorization: Bearer ${await token(key, {}, { expiresIn: 1_000_000 })}`;
    const strict = await runCheck([
      '--policies',
      'policies',
      '--host',
      'orders',
      '--path',
      '/orders/7',
      '--header',
      expired,
      '--jwt-issuer',
      ISSUER,
      '--jwt-audience',
      AUDIENCE,
      '--jwks',
      jwks,
    ]);
    expect(strict.code).toBe(1);
    expect(strict.out).toContain('DENY (unauthenticated, HTTP 401)');
    const plain = await runCheck(['--policies', 'policies', '--host', 'frontend', '--path', '/', '--header', expired]);
    expect(plain.code).toBe(0);
  });

  it('takes --load, --risk-header and --trusted-hops', async () => {
    const shed = await runCheck([
      '--policies',
      'policies',
      '--host',
      'frontend',
      '--path',
      '/',
      '--context-extension',
      'priority=low',
      '--load',
      '95',
    ]);
    expect(shed.code).toBe(1);
    expect(shed.out).toContain('shed-anonymous-under-load');
    const hops = await runCheck([
      '--policies',
      'policies',
      '--host',
      'frontend',
      '--path',
      '/',
      '--source-ip',
      '10.0.0.1',
      '--header',
      'x-forwarded-for: 198.51.100.66',
      '--trusted-hops',
      '1',
      '--json',
    ]);
    expect(hops.code).toBe(1);
    expect(JSON.parse(hops.out).decision.policies).toEqual(['blocklisted-networks']);
  });
});
