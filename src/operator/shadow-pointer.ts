/**
 * Setting and clearing the pointer's shadow version (bundle/store/shadow-field.ts).
 * Activating any version (activate, rollback, lockdown, mode) rewrites the
 * pointer without it: a shadow trial compares a candidate with one baseline,
 * and a new baseline ends the trial (the history shows when).
 */
import type { KeyObject } from 'node:crypto';
import { PolicySetError } from '../cedar/compile.js';
import { compileBundle } from '../bundle/active-bundle.js';
import { filesToPolicySetSource } from '../bundle/format/bundle-files.js';
import { BundlePublishError } from './bundle-publish.js';
import type { BundlePointer, BundleStore } from '../bundle/store/bundle-store.js';
import { signatureProblem, type VerifyKeys } from '../bundle/format/signature.js';
import { shadowOf, type ShadowField } from '../bundle/store/shadow-field.js';
import { loadVersion } from './derived-version.js';

async function readPointer(store: BundleStore): Promise<{ pointer: BundlePointer; etag: string | undefined }> {
  const read = await store.getPointer();
  if (read.kind !== 'found') {
    throw new BundlePublishError(
      read.kind === 'invalid'
        ? `${read.error.message}; activate a version first`
        : `no version of ${store.location.bundle} is active; a shadow version needs an active one to compare with`,
    );
  }
  return { pointer: read.pointer, etag: read.etag };
}

export interface ShadowChange {
  pointer: BundlePointer;
  /** The shadow before the change, if any. */
  before?: ShadowField;
}

export async function setShadowVersion(
  store: BundleStore,
  version: string,
  options: { verifyKey?: KeyObject | VerifyKeys; now?: Date } = {},
): Promise<ShadowChange & { policies: number }> {
  const { pointer, etag } = await readPointer(store);
  if (pointer.version === version)
    throw new BundlePublishError(
      `${version} is the active version; shadow a candidate you have pushed but not activated`,
    );
  let loaded;
  try {
    loaded = await loadVersion(store, version);
  } catch (err) {
    if ((err as { status?: number }).status === 404)
      throw new BundlePublishError(
        `version ${version} does not exist; push it first (bundle list shows what is there)`,
      );
    throw err;
  }
  let policies: number;
  try {
    policies = compileBundle(filesToPolicySetSource(loaded.files, version)).policySet.policies.size;
  } catch (err) {
    if (err instanceof PolicySetError)
      throw new BundlePublishError(`version ${version} would be refused by the servers: ${err.message}`);
    throw err;
  }
  if (options.verifyKey) {
    const sig = await store.getSignature(version);
    const problem = sig
      ? signatureProblem(options.verifyKey, { bundle: store.location.bundle, version, sha256: loaded.sha256 }, sig)
      : 'it is not signed';
    if (problem) throw new BundlePublishError(`version ${version} does not verify with the given key: ${problem}`);
  }
  const shadow: ShadowField = { version, sha256: loaded.sha256, set_at: (options.now ?? new Date()).toISOString() };
  const next: BundlePointer = { ...pointer, shadow };
  await store.writePointer(next, etag);
  return { pointer: next, before: shadowOf(pointer), policies };
}

/** Remove the shadow field; `before` is undefined when there was none (nothing written). */
export async function clearShadowVersion(store: BundleStore): Promise<ShadowChange> {
  const { pointer, etag } = await readPointer(store);
  const before = shadowOf(pointer);
  if (!before && !('shadow' in pointer)) return { pointer };
  const next: BundlePointer = { ...pointer };
  delete (next as Record<string, unknown>).shadow;
  await store.writePointer(next, etag);
  return { pointer: next, before };
}
