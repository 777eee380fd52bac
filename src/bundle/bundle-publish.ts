/**
 * Publishing to the store: push a built bundle, activate a version (write the
 * pointer), roll back (activate the pointer's `previous`). Used by the CLI,
 * `npm run dev` and the tests; each step checks before it writes, so a
 * version that would be refused by servers is refused here first.
 */
import type { KeyObject } from 'node:crypto';
import { DEFAULT_ARCHIVE_LIMITS } from './bundle-archive.js';
import { openBundle } from './bundle-build.js';
import { BundleStoreError, type BundlePointer, type BundleStore } from './bundle-store.js';
import { sha256, type BundleManifest } from './manifest.js';
import { signatureProblem, signBundle } from './signature.js';

export class BundlePublishError extends Error {}

export interface PushOptions {
  signKey?: KeyObject;
  onProgress?: (sent: number, total: number) => void;
}

export interface PushResult {
  version: string;
  sha256: string;
  bytes: number;
  key: string;
  signed: boolean;
}

/** Upload a built tarball as its manifest's version. Refuses an existing version (VersionExistsError). */
export async function pushBundle(store: BundleStore, tarball: Buffer, manifest: BundleManifest, options: PushOptions = {}): Promise<PushResult> {
  if (manifest.name !== store.location.bundle) {
    throw new BundlePublishError(
      `the bundle was built as "${manifest.name}" but --bundle is "${store.location.bundle}"; rebuild it with --name ${store.location.bundle}`,
    );
  }
  const hash = sha256(tarball);
  const signature = options.signKey ? signBundle(options.signKey, hash) : undefined;
  await store.putVersion(manifest.version, tarball, { sha256: hash, signature, onProgress: options.onProgress });
  return { version: manifest.version, sha256: hash, bytes: tarball.length, key: store.versionKey(manifest.version), signed: signature !== undefined };
}

export interface ActivateOptions {
  /** Refuse versions this key does not verify (what servers with --verify-key would do). */
  verifyKey?: KeyObject;
  now?: Date;
}

export interface ActivateResult {
  pointer: BundlePointer;
  /** The pointer before, if any. */
  before?: BundlePointer;
  /** The version was active already; nothing was written. */
  unchanged: boolean;
}

/**
 * Point the bundle at `version` after checking that it exists, still has the
 * sha256 it was pushed with, unpacks, matches its manifest, and (with a key)
 * is signed. The pointer is written with a compare-and-swap on its ETag.
 */
export async function activateVersion(store: BundleStore, version: string, options: ActivateOptions = {}): Promise<ActivateResult> {
  const current = await store.getPointer();
  const before = current.kind === 'found' ? current.pointer : undefined;
  const etag = current.kind === 'found' || current.kind === 'invalid' ? current.etag : null;
  return activateChecked(store, version, before, etag, before?.version ?? null, options);
}

/** Activate the pointer's `previous`; its own `previous` becomes the version rolled back from, so a second rollback undoes the first. */
export async function rollbackBundle(store: BundleStore, options: ActivateOptions = {}): Promise<ActivateResult> {
  const current = await store.getPointer();
  if (current.kind === 'missing') throw new BundlePublishError(`no version of ${store.location.bundle} is active (${store.url(store.pointerKey())} does not exist)`);
  if (current.kind === 'invalid') throw new BundlePublishError(`${current.error.message}; activate a version explicitly`);
  if (current.kind !== 'found') throw new BundlePublishError('unexpected pointer state');
  const from = current.pointer;
  if (!from.previous) throw new BundlePublishError(`${from.version} is active and has no previous version to roll back to`);
  return activateChecked(store, from.previous, from, current.etag, from.version, options);
}

async function activateChecked(
  store: BundleStore,
  version: string,
  before: BundlePointer | undefined,
  etag: string | null | undefined,
  previous: string | null,
  options: ActivateOptions,
): Promise<ActivateResult> {
  let got;
  try {
    got = await store.getVersion(version, { maxBytes: DEFAULT_ARCHIVE_LIMITS.maxArchiveBytes });
  } catch (err) {
    if (err instanceof BundleStoreError && err.status === 404) {
      throw new BundlePublishError(`version ${version} does not exist at ${store.url(store.versionKey(version))}; push it first (bundle list shows what is there)`);
    }
    throw err;
  }
  const hash = sha256(got.tarball);
  if (got.recordedSha256 && got.recordedSha256 !== hash) {
    throw new BundlePublishError(`version ${version} was pushed with sha256 ${got.recordedSha256} but the stored tarball is ${hash}; refusing to activate a changed bundle`);
  }
  if (before && before.version === version && before.sha256 === hash) return { pointer: before, before, unchanged: true };
  let manifest;
  try {
    manifest = (await openBundle(got.tarball)).manifest;
  } catch (err) {
    throw new BundlePublishError(`version ${version} is not a usable bundle: ${(err as Error).message}`);
  }
  if (manifest.version !== version) {
    throw new BundlePublishError(`the tarball stored as ${version} says it is version ${manifest.version}; refusing`);
  }
  if (options.verifyKey) {
    const sig = await store.getSignature(version);
    const problem = sig ? signatureProblem(options.verifyKey, hash, sig) : 'it is not signed';
    if (problem) throw new BundlePublishError(`version ${version} does not verify with the given key: ${problem}`);
  }
  const pointer: BundlePointer = {
    version,
    sha256: hash,
    activated_at: (options.now ?? new Date()).toISOString(),
    previous: previous === version ? (before?.previous ?? null) : previous,
  };
  await store.writePointer(pointer, etag);
  return { pointer, before, unchanged: false };
}
