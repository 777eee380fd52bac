/**
 * Detached Ed25519 signatures over a bundle. The signed message is the
 * tarball's sha256 as 64 lowercase hex characters (ASCII): the hash is what
 * the pointer names, so one signature binds the pointer, the tarball and its
 * manifest together, and anyone can check it with openssl:
 *
 *   printf %s "$(sha256sum bundle.tar.gz | cut -d' ' -f1)" > msg
 *   base64 -d bundle.tar.gz.sig > sig.bin
 *   openssl pkeyutl -verify -pubin -inkey signing.pub -rawin -in msg -sigfile sig.bin
 *
 * The .sig object holds the 64-byte signature in base64 with a newline.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const ED25519_SIGNATURE_BYTES = 64;

export class SignatureKeyError extends Error {}

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new SignatureKeyError(`cannot read key file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function requireEd25519(key: KeyObject, path: string): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new SignatureKeyError(`${path} holds a ${key.asymmetricKeyType ?? key.type} key; bundle signatures use Ed25519`);
  }
  return key;
}

/** A PEM (PKCS#8) Ed25519 private key, as `openssl genpkey -algorithm ed25519` or `authz bundle keygen` writes. */
export function loadSigningKey(path: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(readKeyFile(path));
  } catch (err) {
    if (err instanceof SignatureKeyError) throw err;
    throw new SignatureKeyError(`${path} is not a PEM private key: ${(err as Error).message}`);
  }
  return requireEd25519(key, path);
}

/** A PEM (SPKI) Ed25519 public key. */
export function loadVerifyKey(path: string): KeyObject {
  const pem = readKeyFile(path);
  // createPublicKey would happily derive the public half from a private key; servers should never hold one.
  if (pem.includes('PRIVATE KEY')) throw new SignatureKeyError(`${path} holds a private key; give servers the public key`);
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new SignatureKeyError(`${path} is not a PEM public key: ${(err as Error).message}`);
  }
  return requireEd25519(key, path);
}

export function signBundle(key: KeyObject, tarballSha256: string): Buffer {
  return Buffer.from(sign(null, Buffer.from(tarballSha256, 'ascii'), key).toString('base64') + '\n');
}

/** Why the signature does not verify, or undefined when it does. */
export function signatureProblem(key: KeyObject, tarballSha256: string, sigObject: Buffer): string | undefined {
  const text = sigObject.toString('ascii').trim();
  const raw = /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? Buffer.from(text, 'base64') : Buffer.alloc(0);
  if (raw.length !== ED25519_SIGNATURE_BYTES) return 'the signature is not a base64 Ed25519 signature';
  return verify(null, Buffer.from(tarballSha256, 'ascii'), key, raw) ? undefined : 'the signature does not match the bundle';
}

export function generateSigningKeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}
