/**
 * The bundle tarball: pack a file map into a .tar.gz, and unpack one in memory
 * under limits. A bundle comes from a shared store, so unpacking treats it as
 * hostile input: bounded size before and after gunzip, bounded file count,
 * regular files only (no links, devices or fifos), and no path that could
 * escape the bundle root (absolute, `..`, backslashes, NUL).
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import type { BundleFileMap } from './bundle-files.js';
import { MAX_DIRECTORY_BYTES, MAX_DIRECTORY_FILES } from './policy-directory.js';

export interface ArchiveLimits {
  /** Size of the .tar.gz as downloaded. */
  maxArchiveBytes: number;
  /** Sum of the unpacked file sizes. */
  maxUnpackedBytes: number;
  maxFiles: number;
}

/**
 * The unpacked limits match what a policy directory may hold, so anything
 * `bundle build` accepts a server accepts too. The compressed limit is half of
 * that: Cedar text compresses 5-10x, so a bigger download is not a policy set.
 */
export const DEFAULT_ARCHIVE_LIMITS: Readonly<ArchiveLimits> = Object.freeze({
  maxArchiveBytes: MAX_DIRECTORY_BYTES / 2,
  maxUnpackedBytes: MAX_DIRECTORY_BYTES,
  maxFiles: MAX_DIRECTORY_FILES,
});

/** Per-entry tar overhead (512-byte header, up to 511 bytes padding, a pax header) allowed on top of the file bytes. */
const TAR_OVERHEAD_PER_ENTRY = 2048;

/** Fixed entry metadata so the same files always give the same tarball (and sha256). */
const FILE_MODE = 0o644;

export class BundleArchiveError extends Error {}

const gunzip = promisify(zlib.gunzip);
const gzip = promisify(zlib.gzip);

/**
 * Pack files (sorted by name, manifest.json first when present) into a
 * deterministic .tar.gz: fixed mode, owner and the given mtime.
 */
export async function packBundle(files: BundleFileMap, mtime: Date, firstName?: string): Promise<Buffer> {
  const sorted = [...files.keys()].sort();
  const names = firstName && files.has(firstName) ? [firstName, ...sorted.filter((n) => n !== firstName)] : sorted;
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const name of names) {
    checkEntryPath(name);
    const data = files.get(name)!;
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name, size: data.length, mode: FILE_MODE, mtime, uid: 0, gid: 0, type: 'file' }, data, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }
  pack.finalize();
  await collected;
  return gzip(Buffer.concat(chunks), { level: zlib.constants.Z_BEST_COMPRESSION });
}

/** Unpack a .tar.gz held in memory into a file map, enforcing `limits`. */
export async function unpackBundle(
  archive: Buffer,
  limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS,
): Promise<BundleFileMap> {
  if (archive.length > limits.maxArchiveBytes) {
    throw new BundleArchiveError(
      `the bundle is ${archive.length} bytes, more than the limit of ${limits.maxArchiveBytes}`,
    );
  }
  let tarBytes: Buffer;
  try {
    // maxOutputLength stops a gzip bomb while inflating, before it is in memory.
    tarBytes = await gunzip(archive, {
      maxOutputLength: limits.maxUnpackedBytes + (limits.maxFiles + 2) * TAR_OVERHEAD_PER_ENTRY,
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) {
      throw new BundleArchiveError(`the bundle unpacks to more than ${limits.maxUnpackedBytes} bytes`);
    }
    throw new BundleArchiveError(`the bundle is not a valid gzip file: ${e.message}`);
  }

  const files: BundleFileMap = new Map();
  let total = 0;
  const extract = tar.extract();
  extract.end(tarBytes);
  try {
    for await (const entry of extract) {
      const h = entry.header;
      if (h.type === 'directory') {
        entry.resume();
        continue;
      }
      if (h.type !== 'file' && h.type !== 'contiguous-file') {
        throw new BundleArchiveError(
          `"${h.name}" is a ${h.type ?? 'special'} entry; a bundle may hold regular files only`,
        );
      }
      const name = normaliseEntryPath(h.name);
      if (files.has(name)) throw new BundleArchiveError(`"${name}" appears twice in the bundle`);
      if (files.size + 1 > limits.maxFiles)
        throw new BundleArchiveError(`the bundle holds more than ${limits.maxFiles} files`);
      total += h.size ?? 0;
      if (total > limits.maxUnpackedBytes)
        throw new BundleArchiveError(`the bundle unpacks to more than ${limits.maxUnpackedBytes} bytes`);
      const parts: Buffer[] = [];
      for await (const chunk of entry) parts.push(chunk as Buffer);
      files.set(name, Buffer.concat(parts));
    }
  } catch (err) {
    if (err instanceof BundleArchiveError) throw err;
    throw new BundleArchiveError(`the bundle is not a valid tar archive: ${(err as Error).message}`);
  }
  if (files.size === 0) throw new BundleArchiveError('the bundle holds no files');
  return files;
}

/** "./a/b.cedar" → "a/b.cedar"; anything that could leave the bundle root is refused. */
export function normaliseEntryPath(raw: string): string {
  const name = raw.replace(/^(\.\/)+/, '');
  checkEntryPath(name);
  return name;
}

function checkEntryPath(name: string): void {
  const bad = (why: string) => new BundleArchiveError(`unsafe path "${name}" in the bundle: ${why}`);
  if (name.length === 0) throw bad('empty name');
  if (name.includes('\0')) throw bad('contains NUL');
  if (name.includes('\\')) throw bad('contains a backslash');
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) throw bad('absolute path');
  for (const seg of name.split('/')) {
    if (seg === '..') throw bad('contains ".."');
    if (seg === '' || seg === '.') throw bad('empty or "." path segment');
  }
}
