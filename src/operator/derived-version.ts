/**
 * Publishing a version derived from the active one (a lockdown added or
 * lifted, the mode switched): download the active bundle, change its files,
 * compile the result (refused here if a server would refuse it), pack it with
 * a fresh manifest, push it as a new immutable version and activate it.
 *
 * The bundle's own tests are not a gate here: a lockdown exists to change
 * decisions the tests pin down, and blocking it during an incident would be
 * worse than useless. Everything else the servers check is checked.
 *
 * Uses only the store's public functions (BundleStore, pushBundle,
 * activateVersion), so it works with every server that reads the store.
 */
import type { KeyObject } from 'node:crypto';
import { cedar } from '../cedar/cedar-wasm.js';
import { compileBundle, type ActiveBundle } from '../bundle/active-bundle.js';
import { DEFAULT_ARCHIVE_LIMITS, packBundle } from '../bundle/format/bundle-archive.js';
import { openBundle } from '../bundle/format/open-bundle.js';
import { filesToPolicySetSource, MANIFEST_FILE, type BundleFileMap } from '../bundle/format/bundle-files.js';
import { activateVersion, BundlePublishError, pushBundle, type ActivateResult } from './bundle-publish.js';
import { VersionExistsError, type BundlePointer, type BundleStore } from '../bundle/store/bundle-store.js';
import { buildManifest, serialiseManifest, sha256, type BundleManifest } from '../bundle/format/manifest.js';
import type { VerifyKeys } from '../bundle/format/signature.js';

export interface StoredActiveVersion {
  pointer: BundlePointer;
  files: BundleFileMap;
  manifest: BundleManifest;
}

/** The active version's files, checked like a server checks them. */
export async function loadActiveVersion(store: BundleStore): Promise<StoredActiveVersion> {
  const read = await store.getPointer();
  if (read.kind === 'missing')
    throw new BundlePublishError(
      `no version of ${store.location.bundle} is active yet (${store.url(store.pointerKey())} does not exist); activate one first`,
    );
  if (read.kind === 'invalid')
    throw new BundlePublishError(`${read.error.message}; activate a version explicitly first`);
  if (read.kind !== 'found') throw new BundlePublishError('unexpected pointer state');
  const { pointer } = read;
  return { pointer, ...(await loadVersion(store, pointer.version, pointer.sha256)) };
}

/** A version's files, checked against the sha256 it is known by and its manifest. */
export async function loadVersion(
  store: BundleStore,
  version: string,
  expectSha256?: string,
): Promise<{ files: BundleFileMap; manifest: BundleManifest; sha256: string }> {
  const { tarball } = await store.getVersion(version, { maxBytes: DEFAULT_ARCHIVE_LIMITS.maxArchiveBytes });
  const hash = sha256(tarball);
  if (expectSha256 && hash !== expectSha256) {
    throw new BundlePublishError(
      `version ${version} in the store has sha256 ${hash}, but the pointer says ${expectSha256}; refusing to build on it`,
    );
  }
  let opened;
  try {
    opened = await openBundle(tarball);
  } catch (err) {
    throw new BundlePublishError(`version ${version} is not a usable bundle: ${(err as Error).message}`);
  }
  if (opened.manifest.version !== version)
    throw new BundlePublishError(
      `the tarball stored as ${version} says it is version ${opened.manifest.version}; refusing`,
    );
  if (opened.manifest.name !== store.location.bundle) {
    throw new BundlePublishError(
      `the tarball stored as ${store.location.bundle} ${version} was built as bundle "${opened.manifest.name}"; refusing`,
    );
  }
  return { ...opened, sha256: hash };
}

/**
 * `<root>--<tag>-<UTC yyyymmddhhmmss>`, where root is the base version without
 * an earlier derivation's suffix: repeated lockdowns do not grow the name,
 * and every derived version still says which published version it came from.
 */
export function derivedVersion(base: string, tag: string, at: Date, attempt = 0): string {
  const root = base.split('--')[0];
  const stamp = at.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const cleanTag = tag.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 48);
  const suffix = `--${cleanTag}-${stamp}${attempt > 0 ? `-${attempt + 1}` : ''}`;
  return `${root.slice(0, 128 - suffix.length)}${suffix}`;
}

export interface DerivedPublishOptions {
  /** Short description for the version name, e.g. "lockdown-orders". */
  tag: string;
  signKey?: KeyObject;
  verifyKey?: KeyObject | VerifyKeys;
  now?: Date;
}

export interface DerivedPublishResult {
  version: string;
  sha256: string;
  set: ActiveBundle;
  activation: ActivateResult;
}

/** Tries with a numbered suffix when two operators derive in the same second. */
const MAX_VERSION_ATTEMPTS = 5;

export async function publishDerived(
  store: BundleStore,
  base: StoredActiveVersion,
  files: BundleFileMap,
  options: DerivedPublishOptions,
): Promise<DerivedPublishResult> {
  const now = options.now ?? new Date();
  const content: BundleFileMap = new Map([...files].filter(([name]) => name !== MANIFEST_FILE));
  for (let attempt = 0; ; attempt++) {
    const version = derivedVersion(base.pointer.version, options.tag, now, attempt);
    // Compile exactly what the servers will: refuse here, not on every server.
    const set = compileBundle(filesToPolicySetSource(content, version));
    const manifest = {
      ...buildManifest(content, {
        name: store.location.bundle,
        version,
        created: now,
        cedarVersion: cedar.getCedarVersion(),
      }),
      derived_from: base.pointer.version,
    };
    const packed: BundleFileMap = new Map(content);
    packed.set(MANIFEST_FILE, serialiseManifest(manifest));
    const tarball = await packBundle(packed, now, MANIFEST_FILE);
    try {
      await pushBundle(store, tarball, manifest, { signKey: options.signKey });
    } catch (err) {
      if (err instanceof VersionExistsError && attempt + 1 < MAX_VERSION_ATTEMPTS) continue;
      throw err;
    }
    await ensureStillActive(store, base.pointer);
    const activation = await activateVersion(store, version, { verifyKey: options.verifyKey, now });
    return { version, sha256: sha256(tarball), set, activation };
  }
}

/**
 * Someone may have activated another version while we derived ours; activating
 * ours then would silently undo their change. (activateVersion's own
 * compare-and-swap covers the moment after this read.)
 */
async function ensureStillActive(store: BundleStore, base: BundlePointer): Promise<void> {
  const now = await store.getPointer();
  const version = now.kind === 'found' ? now.pointer.version : null;
  if (version !== base.version) {
    throw new BundlePublishError(
      `the active version changed from ${base.version} to ${version ?? 'none'} while this command ran; run it again`,
    );
  }
}
