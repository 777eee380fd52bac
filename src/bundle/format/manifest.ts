/**
 * manifest.json: what a bundle says about itself (name, version, when it was
 * built, the Cedar version that validated it) and the sha256 of every other
 * file. A server checks the files against it after unpacking, so a tarball
 * edited after build (an added, removed or changed file) is refused even when
 * whoever edited it also fixed the pointer's hash.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { MANIFEST_FILE, type BundleFileMap } from './bundle-files.js';

export const MANIFEST_FORMAT = 1;

/** Names and versions become S3 key segments and file names: keep them plain. */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Key segments the store layout uses for itself (see bundle-store.ts); issue 5 adds history/. */
export const RESERVED_SEGMENTS = new Set(['current.json', 'history']);

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex sha256');

const manifestSchema = z.looseObject({
  format: z.literal(MANIFEST_FORMAT),
  name: z.string(),
  version: z.string(),
  created: z.iso.datetime({ offset: true }),
  cedar_version: z.string(),
  files: z.record(z.string(), sha256Hex),
  tests: z.object({ cases: z.number().int().min(0), passed: z.number().int().min(0) }).optional(),
});

export type BundleManifest = z.infer<typeof manifestSchema>;

export class BundleManifestError extends Error {}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Why `value` cannot be a bundle name or version, or undefined when it can. */
export function segmentProblem(what: 'bundle name' | 'version', value: string): string | undefined {
  if (!SEGMENT.test(value))
    return `${what} "${value}" must be 1-128 characters of letters, digits, ".", "_" or "-", starting with a letter or digit`;
  if (RESERVED_SEGMENTS.has(value)) return `${what} "${value}" is reserved by the store layout`;
  return undefined;
}

export interface ManifestFields {
  name: string;
  version: string;
  created: Date;
  cedarVersion: string;
  tests?: { cases: number; passed: number };
}

/** The manifest for `files` (manifest.json itself is never listed). */
export function buildManifest(files: BundleFileMap, fields: ManifestFields): BundleManifest {
  const listed: Record<string, string> = {};
  for (const name of [...files.keys()].sort()) if (name !== MANIFEST_FILE) listed[name] = sha256(files.get(name)!);
  return {
    format: MANIFEST_FORMAT,
    name: fields.name,
    version: fields.version,
    created: fields.created.toISOString(),
    cedar_version: fields.cedarVersion,
    files: listed,
    ...(fields.tests ? { tests: fields.tests } : {}),
  };
}

export function serialiseManifest(m: BundleManifest): Buffer {
  return Buffer.from(JSON.stringify(m, null, 2) + '\n');
}

export function parseManifest(data: Buffer | undefined): BundleManifest {
  if (!data) throw new BundleManifestError(`the bundle has no ${MANIFEST_FILE}`);
  let raw: unknown;
  try {
    raw = JSON.parse(data.toString('utf8'));
  } catch (err) {
    throw new BundleManifestError(`${MANIFEST_FILE} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BundleManifestError(`${MANIFEST_FILE}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * Check the unpacked files against their manifest: every listed file present
 * with its hash, and nothing unlisted. Returns the manifest.
 */
export function verifyManifest(files: BundleFileMap): BundleManifest {
  const manifest = parseManifest(files.get(MANIFEST_FILE));
  const problems: string[] = [];
  for (const [name, expected] of Object.entries(manifest.files)) {
    const data = files.get(name);
    if (!data) problems.push(`${name} is listed but missing`);
    else if (sha256(data) !== expected) problems.push(`${name} does not match its sha256`);
  }
  for (const name of files.keys()) {
    if (name !== MANIFEST_FILE && !Object.hasOwn(manifest.files, name)) problems.push(`${name} is not listed`);
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 5).join('; ') + (problems.length > 5 ? `; and ${problems.length - 5} more` : '');
    throw new BundleManifestError(`the bundle's files do not match ${MANIFEST_FILE}: ${shown}`);
  }
  return manifest;
}
