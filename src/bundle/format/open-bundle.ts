/**
 * Opening a built bundle: .tar.gz → files checked against their manifest
 * (server sync, shadow loading, operator commands). Building one runs the
 * policy tests through the pipeline, so it lives above it in src/build/.
 */
import { DEFAULT_ARCHIVE_LIMITS, unpackBundle, type ArchiveLimits } from './bundle-archive.js';
import type { BundleFileMap } from './bundle-files.js';
import { verifyManifest, type BundleManifest } from './manifest.js';

export interface OpenedBundle {
  files: BundleFileMap;
  manifest: BundleManifest;
}

/** Unpack under limits and check every file against manifest.json. Throws BundleArchiveError / BundleManifestError. */
export async function openBundle(
  tarball: Buffer,
  limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS,
): Promise<OpenedBundle> {
  const files = await unpackBundle(tarball, limits);
  return { files, manifest: verifyManifest(files) };
}
