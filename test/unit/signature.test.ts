import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSigningKeyPair, loadSigningKey, loadVerifyKey, signatureProblem, signBundle } from '../../src/bundle/signature.js';

const dir = mkdtempSync(path.join(tmpdir(), 'authz-sig-'));
function keyFiles(): { key: string; pub: string } {
  const { privateKeyPem, publicKeyPem } = generateSigningKeyPair();
  const base = path.join(dir, `k${Math.random().toString(36).slice(2)}`);
  writeFileSync(`${base}.key`, privateKeyPem);
  writeFileSync(`${base}.pub`, publicKeyPem);
  return { key: `${base}.key`, pub: `${base}.pub` };
}

const HASH = 'a'.repeat(64);

describe('bundle signatures', () => {
  it('a signature made with the private key verifies with the public key', () => {
    const k = keyFiles();
    expect(signatureProblem(loadVerifyKey(k.pub), HASH, signBundle(loadSigningKey(k.key), HASH))).toBeUndefined();
  });

  it('refuses a signature over another hash', () => {
    const k = keyFiles();
    const sig = signBundle(loadSigningKey(k.key), 'b'.repeat(64));
    expect(signatureProblem(loadVerifyKey(k.pub), HASH, sig)).toMatch(/does not match/);
  });

  it('refuses a signature by another key', () => {
    const a = keyFiles();
    const b = keyFiles();
    expect(signatureProblem(loadVerifyKey(b.pub), HASH, signBundle(loadSigningKey(a.key), HASH))).toMatch(/does not match/);
  });

  it('refuses something that is not a signature', () => {
    const k = keyFiles();
    expect(signatureProblem(loadVerifyKey(k.pub), HASH, Buffer.from('hello'))).toMatch(/not a base64 Ed25519 signature/);
  });

  it('refuses a private key given as the verify key, and non-Ed25519 keys', () => {
    const k = keyFiles();
    expect(() => loadVerifyKey(k.key)).toThrow(/holds a private key/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rsaPub = path.join(dir, 'rsa.pub');
    writeFileSync(rsaPub, rsa.publicKey.export({ type: 'spki', format: 'pem' }));
    expect(() => loadVerifyKey(rsaPub)).toThrow(/holds a rsa key; bundle signatures use Ed25519/);
    expect(() => loadVerifyKey(path.join(dir, 'missing.pub'))).toThrow(/cannot read key file .*ENOENT/);
  });
});
