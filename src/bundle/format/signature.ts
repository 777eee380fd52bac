/**
 * Detached Ed25519 signatures over a bundle, bound to what they authorise.
 *
 * The signed message is a canonical statement naming the bundle, the version,
 * the tarball's sha256, the signer's key id and when it was signed, one field
 * per line in a fixed order:
 *
 *   cedar-envoy-authz bundle signature v2
 *   bundle mesh
 *   version v8
 *   sha256 4f1c…(64 hex)
 *   key 9a3b5c7d1e2f4a6b
 *   signed-at 2026-11-30T17:02:11.000Z
 *
 * A server rebuilds the statement from what it expects (its configured bundle
 * name, the version the pointer names, the hash of the tarball it downloaded),
 * so a signature made for `staging` or for `mesh v3` does not verify as
 * `mesh v8`, whatever the signature object claims. Names and versions are
 * plain segments (manifest.ts), so the statement cannot be forged by
 * embedding a newline.
 *
 * The .sig object is JSON with the statement's fields and the 64-byte
 * signature in base64. Anyone can check it with openssl:
 *
 *   printf 'cedar-envoy-authz bundle signature v2\nbundle %s\nversion %s\nsha256 %s\nkey %s\nsigned-at %s\n' \
 *     mesh v8 "$(sha256sum bundle.tar.gz | cut -d' ' -f1)" "$KEY_ID" "$SIGNED_AT" > msg
 *   jq -r .signature bundle.tar.gz.sig | base64 -d > sig.bin
 *   openssl pkeyutl -verify -pubin -inkey signing.pub -rawin -in msg -sigfile sig.bin
 *
 * Format 1 (base64 over the tarball hash alone) is refused with a message
 * saying how to re-sign: it did not say which bundle it was for.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { segmentProblem } from './manifest.js';

export const ED25519_SIGNATURE_BYTES = 64;
export const SIGNATURE_FORMAT = 'cedar-envoy-authz bundle signature v2';
/** Hex characters of the public key's sha256 that name it: enough to tell keys apart, short enough to read. */
export const KEY_ID_HEX_CHARS = 16;

export class SignatureKeyError extends Error {}

/** What a signature authorises: this tarball, as this version of this bundle. */
export interface BundleStatement {
  bundle: string;
  version: string;
  sha256: string;
}

export interface SignedStatement extends BundleStatement {
  keyId: string;
  signedAt: string;
}

/** The keys a server or publisher accepts signatures from (several during a key rotation). */
export type VerifyKeys = readonly KeyObject[];

export interface VerifyOptions {
  /** Rollback floor: signatures made before this time are refused (--signed-not-before). */
  signedNotBefore?: Date;
}

const sigObjectSchema = z.object({
  format: z.literal(SIGNATURE_FORMAT),
  bundle: z.string(),
  version: z.string(),
  sha256: z.string(),
  key_id: z.string().regex(/^[0-9a-f]+$/),
  signed_at: z.iso.datetime(),
  signature: z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/),
});

/** The exact bytes signed. */
export function canonicalStatement(s: SignedStatement): Buffer {
  for (const [what, value] of [
    ['bundle name', s.bundle],
    ['version', s.version],
  ] as const) {
    const problem = segmentProblem(what, value);
    if (problem) throw new SignatureKeyError(problem);
  }
  return Buffer.from(
    [
      SIGNATURE_FORMAT,
      `bundle ${s.bundle}`,
      `version ${s.version}`,
      `sha256 ${s.sha256}`,
      `key ${s.keyId}`,
      `signed-at ${s.signedAt}`,
    ].join('\n') + '\n',
    'utf8',
  );
}

/** A key's id: the first hex characters of the sha256 of its public key (SPKI DER). Same for both halves of a pair. */
export function keyIdOf(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const der = pub.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, KEY_ID_HEX_CHARS);
}

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new SignatureKeyError(
      `cannot read key file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

/**
 * createPrivateKey/createPublicKey silently use the first PEM block of a file;
 * a file with two keys would verify with one and ignore the other, so one
 * file holds exactly one key. Several keys are several files.
 */
function requireOnePemBlock(pem: string, path: string): void {
  const blocks = pem.match(/-----BEGIN [A-Z0-9 ]+-----/g) ?? [];
  if (blocks.length > 1) {
    throw new SignatureKeyError(
      `${path} holds ${blocks.length} PEM blocks; a key file must hold exactly one key (to accept several keys during a rotation, give one file per key)`,
    );
  }
}

function requireEd25519(key: KeyObject, path: string): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new SignatureKeyError(
      `${path} holds a ${key.asymmetricKeyType ?? key.type} key; bundle signatures use Ed25519`,
    );
  }
  return key;
}

/** A PEM (PKCS#8) Ed25519 private key, as `openssl genpkey -algorithm ed25519` or `authz bundle keygen` writes. */
export function loadSigningKey(path: string): KeyObject {
  const pem = readKeyFile(path);
  requireOnePemBlock(pem, path);
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new SignatureKeyError(`${path} is not a PEM private key: ${(err as Error).message}`);
  }
  return requireEd25519(key, path);
}

/** A PEM (SPKI) Ed25519 public key. */
export function loadVerifyKey(path: string): KeyObject {
  const pem = readKeyFile(path);
  // createPublicKey would happily derive the public half from a private key; servers should never hold one.
  if (pem.includes('PRIVATE KEY'))
    throw new SignatureKeyError(`${path} holds a private key; give servers the public key`);
  requireOnePemBlock(pem, path);
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new SignatureKeyError(`${path} is not a PEM public key: ${(err as Error).message}`);
  }
  return requireEd25519(key, path);
}

/** Every file's key; the same key given twice is a mistake in the configuration, not a rotation. */
export function loadVerifyKeys(paths: readonly string[]): VerifyKeys {
  const seen = new Map<string, string>();
  const keys: KeyObject[] = [];
  for (const path of paths) {
    const key = loadVerifyKey(path);
    const id = keyIdOf(key);
    const earlier = seen.get(id);
    if (earlier) throw new SignatureKeyError(`${path} holds the same key as ${earlier} (key id ${id})`);
    seen.set(id, path);
    keys.push(key);
  }
  return keys;
}

/** One key or several, as the publishing functions accept them. */
export function asVerifyKeys(keys: KeyObject | VerifyKeys): VerifyKeys {
  return Array.isArray(keys) ? (keys as VerifyKeys) : [keys as KeyObject];
}

/** The .sig object for `statement`, signed now (or at `signedAt`). */
export function signBundle(key: KeyObject, statement: BundleStatement, signedAt: Date = new Date()): Buffer {
  const full: SignedStatement = { ...statement, keyId: keyIdOf(key), signedAt: signedAt.toISOString() };
  const signature = sign(null, canonicalStatement(full), key).toString('base64');
  const object = {
    format: SIGNATURE_FORMAT,
    bundle: full.bundle,
    version: full.version,
    sha256: full.sha256,
    key_id: full.keyId,
    signed_at: full.signedAt,
    signature,
  };
  return Buffer.from(JSON.stringify(object, null, 2) + '\n');
}

/** The signed statement of a .sig object, without verifying it (for display: bundle list, /bundle). */
export function readSignedStatement(sigObject: Buffer): SignedStatement | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(sigObject.toString('utf8'));
  } catch {
    return undefined;
  }
  const parsed = sigObjectSchema.safeParse(raw);
  if (!parsed.success) return undefined;
  const o = parsed.data;
  return { bundle: o.bundle, version: o.version, sha256: o.sha256, keyId: o.key_id, signedAt: o.signed_at };
}

const OLD_FORMAT_MESSAGE =
  'the signature is in the old format (over the tarball hash alone, which does not say which bundle or version it authorises); ' +
  're-sign the version with `authz bundle sign VERSION --sign-key KEY` or push a new version';

/**
 * Why the signature does not authorise `expected`, or undefined when it
 * does. `expected` is what the caller knows independently (configured bundle,
 * pointer version, downloaded hash), never what the signature object says.
 */
export function signatureProblem(
  keys: KeyObject | VerifyKeys,
  expected: BundleStatement,
  sigObject: Buffer,
  options: VerifyOptions = {},
): string | undefined {
  const text = sigObject.toString('utf8').trim();
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(text) && Buffer.from(text, 'base64').length === ED25519_SIGNATURE_BYTES)
    return OLD_FORMAT_MESSAGE;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return 'the signature object is neither JSON nor an old-format signature';
  }
  const parsed = sigObjectSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return `the signature object is not a ${SIGNATURE_FORMAT}: ${issue.path.join('.') || '(root)'}: ${issue.message}`;
  }
  const o = parsed.data;
  // Field by field first, so the message says what the signature was made for.
  if (o.bundle !== expected.bundle) return `the signature is for bundle "${o.bundle}", not "${expected.bundle}"`;
  if (o.version !== expected.version) return `the signature is for version ${o.version}, not ${expected.version}`;
  if (o.sha256 !== expected.sha256)
    return `the signature is for a tarball with sha256 ${o.sha256}, not ${expected.sha256}`;
  const list = asVerifyKeys(keys);
  const key = list.find((k) => keyIdOf(k) === o.key_id);
  if (!key)
    return `the signature is by key ${o.key_id}, which is not among the verify keys (${list.map(keyIdOf).join(', ')})`;
  const raw64 = Buffer.from(o.signature, 'base64');
  if (raw64.length !== ED25519_SIGNATURE_BYTES) return 'the signature is not a base64 Ed25519 signature';
  const statement = canonicalStatement({ ...expected, keyId: o.key_id, signedAt: o.signed_at });
  if (!verify(null, statement, key, raw64)) return 'the signature does not match the bundle';
  if (options.signedNotBefore && Date.parse(o.signed_at) < options.signedNotBefore.getTime()) {
    return `the signature was made at ${o.signed_at}, before the --signed-not-before floor ${options.signedNotBefore.toISOString()}`;
  }
  return undefined;
}

export function generateSigningKeyPair(): { privateKeyPem: string; publicKeyPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyIdOf(publicKey),
  };
}
