/**
 * Publishing to the store: push a built bundle, activate a version (write the
 * pointer), roll back (activate the pointer's `previous`), sign a version
 * again. Used by the CLI, `npm run dev` and the tests; each step checks before
 * it writes, so a version that would be refused by servers is refused here
 * first: activation downloads, verifies and compiles the version exactly as a
 * server does before it moves the pointer (`force` skips the compile and
 * manifest checks, for emergencies; the CLI records that in the audit trail).
 */
import type { KeyObject } from 'node:crypto';
import { PolicySetError } from '../cedar/compile.js';
import { compileBundle } from '../bundle/active-bundle.js';
import { DEFAULT_ARCHIVE_LIMITS } from '../bundle/format/bundle-archive.js';
import { openBundle } from '../bundle/format/open-bundle.js';
import { filesToPolicySetSource } from '../bundle/format/bundle-files.js';
import { BundleStoreError, type BundlePointer, type BundleStore } from '../bundle/store/bundle-store.js';
import { sha256, type BundleManifest } from '../bundle/format/manifest.js';
import { signatureProblem, signBundle, type VerifyKeys } from '../bundle/format/signature.js';

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
export async function pushBundle(
  store: BundleStore,
  tarball: Buffer,
  manifest: BundleManifest,
  options: PushOptions = {},
): Promise<PushResult> {
  if (manifest.name !== store.location.bundle) {
    throw new BundlePublishError(
      `the bundle was built as "${manifest.name}" but --bundle is "${store.location.bundle}"; rebuild it with --name ${store.location.bundle}`,
    );
  }
  const hash = sha256(tarball);
  const signature = options.signKey
    ? signBundle(options.signKey, { bundle: store.location.bundle, version: manifest.version, sha256: hash })
    : undefined;
  await store.putVersion(manifest.version, tarball, { sha256: hash, signature, onProgress: options.onProgress });
  return {
    version: manifest.version,
    sha256: hash,
    bytes: tarball.length,
    key: store.versionKey(manifest.version),
    signed: signature !== undefined,
  };
}

export interface ActivateOptions {
  /** Refuse versions these keys do not verify (what servers with --verify-key would do). */
  verifyKey?: KeyObject | VerifyKeys;
  /**
   * Activate even when the version does not unpack against its manifest or
   * does not compile (the hash and signature are still checked). For
   * emergencies, e.g. a publisher whose Cedar is older than the servers'.
   */
  force?: boolean;
  now?: Date;
}

export interface ActivateResult {
  pointer: BundlePointer;
  /** The pointer before, if any. */
  before?: BundlePointer;
  /** The version was active already; nothing was written. */
  unchanged: boolean;
  /** Policies in the version, as compiled before the pointer moved (absent when forced past a failure). */
  policies?: number;
  /** With `force`: why the checks would have refused it (undefined when they passed). */
  forcedPast?: string;
}

/**
 * Point the bundle at `version` after checking that it exists, still has the
 * sha256 it was pushed with, unpacks, matches its manifest, and (with a key)
 * is signed. The pointer is written with a compare-and-swap on its ETag.
 */
export async function activateVersion(
  store: BundleStore,
  version: string,
  options: ActivateOptions = {},
): Promise<ActivateResult> {
  const current = await store.getPointer();
  const before = current.kind === 'found' ? current.pointer : undefined;
  const etag = current.kind === 'found' || current.kind === 'invalid' ? current.etag : null;
  return activateChecked(store, version, before, etag, before?.version ?? null, options);
}

/** Activate the pointer's `previous`; its own `previous` becomes the version rolled back from, so a second rollback undoes the first. */
export async function rollbackBundle(store: BundleStore, options: ActivateOptions = {}): Promise<ActivateResult> {
  const current = await store.getPointer();
  if (current.kind === 'missing')
    throw new BundlePublishError(
      `no version of ${store.location.bundle} is active (${store.url(store.pointerKey())} does not exist)`,
    );
  if (current.kind === 'invalid')
    throw new BundlePublishError(`${current.error.message}; activate a version explicitly`);
  if (current.kind !== 'found') throw new BundlePublishError('unexpected pointer state');
  const from = current.pointer;
  if (!from.previous)
    throw new BundlePublishError(`${from.version} is active and has no previous version to roll back to`);
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
      throw new BundlePublishError(
        `version ${version} does not exist at ${store.url(store.versionKey(version))}; push it first (bundle list shows what is there)`,
      );
    }
    throw err;
  }
  const hash = sha256(got.tarball);
  if (got.recordedSha256 && got.recordedSha256 !== hash) {
    throw new BundlePublishError(
      `version ${version} was pushed with sha256 ${got.recordedSha256} but the stored tarball is ${hash}; refusing to activate a changed bundle`,
    );
  }
  if (before && before.version === version && before.sha256 === hash)
    return { pointer: before, before, unchanged: true };
  if (options.verifyKey) {
    const sig = await store.getSignature(version);
    const problem = sig
      ? signatureProblem(options.verifyKey, { bundle: store.location.bundle, version, sha256: hash }, sig)
      : 'it is not signed';
    if (problem) throw new BundlePublishError(`version ${version} does not verify with the given key: ${problem}`);
  }
  let policies: number | undefined;
  let forcedPast: string | undefined;
  try {
    policies = await checkLoadable(store, version, got.tarball);
  } catch (err) {
    if (!(err instanceof BundlePublishError) || !options.force) throw err;
    forcedPast = err.message;
  }
  const pointer: BundlePointer = {
    version,
    sha256: hash,
    activated_at: (options.now ?? new Date()).toISOString(),
    previous: previous === version ? (before?.previous ?? null) : previous,
  };
  await store.writePointer(pointer, etag);
  return { pointer, before, unchanged: false, policies, forcedPast };
}

/**
 * What every server does with a version before it serves it: unpack under
 * the archive limits, check the files against the manifest, check the
 * manifest names this bundle and version, compile (schema validation
 * included). Returns the number of policies; throws BundlePublishError naming
 * what a server would refuse.
 */
async function checkLoadable(store: BundleStore, version: string, tarball: Buffer): Promise<number> {
  let opened;
  try {
    opened = await openBundle(tarball);
  } catch (err) {
    throw new BundlePublishError(`version ${version} is not a usable bundle: ${(err as Error).message}`);
  }
  const { manifest, files } = opened;
  if (manifest.version !== version)
    throw new BundlePublishError(`the tarball stored as ${version} says it is version ${manifest.version}; refusing`);
  if (manifest.name !== store.location.bundle) {
    throw new BundlePublishError(
      `the tarball stored as ${store.location.bundle} ${version} was built as bundle "${manifest.name}"; servers refuse it`,
    );
  }
  try {
    return compileBundle(filesToPolicySetSource(files, version)).policySet.policies.size;
  } catch (err) {
    if (err instanceof PolicySetError)
      throw new BundlePublishError(`version ${version} would be refused by every server: ${err.message}`);
    throw err;
  }
}

export interface SignResult {
  version: string;
  sha256: string;
  /** The version had a signature before (now replaced). */
  replaced: boolean;
}

/**
 * Sign a pushed version (again): for versions pushed unsigned or with an
 * old-format signature. The version must still have the hash it was pushed
 * with and be this bundle's, as its manifest says.
 */
export async function signVersion(
  store: BundleStore,
  version: string,
  signKey: KeyObject,
  now: Date = new Date(),
): Promise<SignResult> {
  let got;
  try {
    got = await store.getVersion(version, { maxBytes: DEFAULT_ARCHIVE_LIMITS.maxArchiveBytes });
  } catch (err) {
    if (err instanceof BundleStoreError && err.status === 404)
      throw new BundlePublishError(`version ${version} does not exist at ${store.url(store.versionKey(version))}`);
    throw err;
  }
  const hash = sha256(got.tarball);
  if (got.recordedSha256 && got.recordedSha256 !== hash) {
    throw new BundlePublishError(
      `version ${version} was pushed with sha256 ${got.recordedSha256} but the stored tarball is ${hash}; refusing to sign a changed bundle`,
    );
  }
  await checkLoadable(store, version, got.tarball);
  const replaced = (await store.getSignature(version)) !== undefined;
  await store.putSignature(version, signBundle(signKey, { bundle: store.location.bundle, version, sha256: hash }, now));
  return { version, sha256: hash, replaced };
}
