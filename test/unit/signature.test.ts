import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  canonicalStatement,
  generateSigningKeyPair,
  keyIdOf,
  loadSigningKey,
  loadVerifyKey,
  loadVerifyKeys,
  readSignedStatement,
  signatureProblem,
  signBundle,
  type BundleStatement,
} from '../../src/bundle/format/signature.js';

const dir = mkdtempSync(path.join(tmpdir(), 'authz-sig-'));
function keyFiles(): { key: string; pub: string } {
  const { privateKeyPem, publicKeyPem } = generateSigningKeyPair();
  const base = path.join(dir, `k${Math.random().toString(36).slice(2)}`);
  writeFileSync(`${base}.key`, privateKeyPem);
  writeFileSync(`${base}.pub`, publicKeyPem);
  return { key: `${base}.key`, pub: `${base}.pub` };
}

const HASH = 'a'.repeat(64);
const MESH_V8: BundleStatement = { bundle: 'mesh', version: 'v8', sha256: HASH };

describe('bundle signatures', () => {
  const k = keyFiles();
  const signKey = loadSigningKey(k.key);
  const verifyKey = loadVerifyKey(k.pub);

  it('a signature made with the private key verifies with the public key, for exactly the statement signed', () => {
    expect(signatureProblem(verifyKey, MESH_V8, signBundle(signKey, MESH_V8))).toBeUndefined();
    expect(signatureProblem([verifyKey], MESH_V8, signBundle(signKey, MESH_V8))).toBeUndefined();
  });

  const misbound: { name: string; signed: BundleStatement; error: RegExp }[] = [
    {
      name: 'another bundle',
      signed: { ...MESH_V8, bundle: 'staging' },
      error: /the signature is for bundle "staging", not "mesh"/,
    },
    {
      name: 'another version',
      signed: { ...MESH_V8, version: 'v3' },
      error: /the signature is for version v3, not v8/,
    },
    {
      name: 'another tarball',
      signed: { ...MESH_V8, sha256: 'b'.repeat(64) },
      error: /the signature is for a tarball with sha256 b{64}, not a{64}/,
    },
  ];
  for (const row of misbound) {
    it(`refuses a signature made for ${row.name}`, () => {
      expect(signatureProblem(verifyKey, MESH_V8, signBundle(signKey, row.signed))).toMatch(row.error);
    });
  }

  it('refuses a signature object whose fields were edited to match (the signed statement is rebuilt from what the verifier expects)', () => {
    const forged = JSON.parse(signBundle(signKey, { ...MESH_V8, bundle: 'staging' }).toString());
    forged.bundle = 'mesh';
    expect(signatureProblem(verifyKey, MESH_V8, Buffer.from(JSON.stringify(forged)))).toMatch(
      /does not match the bundle/,
    );
  });

  it('refuses a signature by a key that is not configured, naming both key ids', () => {
    const other = loadSigningKey(keyFiles().key);
    expect(signatureProblem(verifyKey, MESH_V8, signBundle(other, MESH_V8))).toBe(
      `the signature is by key ${keyIdOf(other)}, which is not among the verify keys (${keyIdOf(verifyKey)})`,
    );
  });

  it('refuses an old-format signature (base64 over the hash alone) with a message saying how to re-sign', () => {
    const old = Buffer.from(sign(null, Buffer.from(HASH, 'ascii'), signKey).toString('base64') + '\n');
    expect(signatureProblem(verifyKey, MESH_V8, old)).toMatch(/old format .*authz bundle sign VERSION --sign-key KEY/);
  });

  it('refuses something that is not a signature', () => {
    expect(signatureProblem(verifyKey, MESH_V8, Buffer.from('hello'))).toMatch(
      /neither JSON nor an old-format signature/,
    );
    expect(signatureProblem(verifyKey, MESH_V8, Buffer.from('{"format":"x"}'))).toMatch(
      /is not a cedar-envoy-authz bundle signature v2/,
    );
  });

  it('applies the --signed-not-before floor', () => {
    const sig = signBundle(signKey, MESH_V8, new Date('2026-01-01T00:00:00Z'));
    expect(
      signatureProblem(verifyKey, MESH_V8, sig, { signedNotBefore: new Date('2025-12-31T00:00:00Z') }),
    ).toBeUndefined();
    expect(signatureProblem(verifyKey, MESH_V8, sig, { signedNotBefore: new Date('2026-06-01T00:00:00Z') })).toMatch(
      /made at 2026-01-01T00:00:00\.000Z, before the --signed-not-before floor 2026-06-01T00:00:00\.000Z/,
    );
  });

  it('the signed statement is the documented text, and the .sig object carries its fields', () => {
    const at = new Date('2026-11-30T17:02:11Z');
    const sig = signBundle(signKey, MESH_V8, at);
    expect(readSignedStatement(sig)).toEqual({ ...MESH_V8, keyId: keyIdOf(signKey), signedAt: at.toISOString() });
    expect(canonicalStatement({ ...MESH_V8, keyId: 'abc', signedAt: at.toISOString() }).toString()).toBe(
      `cedar-envoy-authz bundle signature v2\nbundle mesh\nversion v8\nsha256 ${HASH}\nkey abc\nsigned-at 2026-11-30T17:02:11.000Z\n`,
    );
    // A name that could smuggle a line into the statement is refused.
    expect(() =>
      canonicalStatement({ ...MESH_V8, bundle: 'mesh\nversion v1', keyId: 'abc', signedAt: at.toISOString() }),
    ).toThrow(/bundle name/);
  });

  it('both halves of a pair have the same key id', () => {
    expect(keyIdOf(signKey)).toBe(keyIdOf(verifyKey));
    expect(keyIdOf(signKey)).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('key files', () => {
  it('refuses a private key given as the verify key, and non-Ed25519 keys', () => {
    const k = keyFiles();
    expect(() => loadVerifyKey(k.key)).toThrow(/holds a private key/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rsaPub = path.join(dir, 'rsa.pub');
    writeFileSync(rsaPub, rsa.publicKey.export({ type: 'spki', format: 'pem' }));
    expect(() => loadVerifyKey(rsaPub)).toThrow(/holds a rsa key; bundle signatures use Ed25519/);
    expect(() => loadVerifyKey(path.join(dir, 'missing.pub'))).toThrow(/cannot read key file .*ENOENT/);
  });

  it('refuses a file holding more than one key (public or private)', () => {
    const a = keyFiles();
    const b = keyFiles();
    const pubs = path.join(dir, 'two.pub');
    writeFileSync(pubs, readFileSync(a.pub, 'utf8') + readFileSync(b.pub, 'utf8'));
    expect(() => loadVerifyKey(pubs)).toThrow(/two\.pub holds 2 PEM blocks; a key file must hold exactly one key/);
    const keys = path.join(dir, 'two.key');
    writeFileSync(keys, readFileSync(a.key, 'utf8') + readFileSync(b.key, 'utf8'));
    expect(() => loadSigningKey(keys)).toThrow(/two\.key holds 2 PEM blocks/);
  });

  it('several files are several keys (a rotation); all are tried; the same key twice is refused', () => {
    const a = keyFiles();
    const b = keyFiles();
    const keys = loadVerifyKeys([a.pub, b.pub]);
    expect(keys).toHaveLength(2);
    expect(signatureProblem(keys, MESH_V8, signBundle(loadSigningKey(a.key), MESH_V8))).toBeUndefined();
    expect(signatureProblem(keys, MESH_V8, signBundle(loadSigningKey(b.key), MESH_V8))).toBeUndefined();
    expect(() => loadVerifyKeys([a.pub, a.pub])).toThrow(/holds the same key as/);
  });
});
