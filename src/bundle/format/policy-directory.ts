/**
 * The policy directory as a bundle source: read it as one snapshot, and watch it.
 *
 * A directory is not a transaction: editors rewrite files in place, deploy
 * scripts rename several files over one another, `ln -sfn` swaps a symlinked
 * directory, Kubernetes swaps `..data` under per-file links. A set compiled
 * from files read at different moments can be one no one wrote (a `forbid`
 * moving from a.cedar to b.cedar can be read in neither). So a read is
 * accepted only when it is a snapshot:
 *
 * - the directory's real path is resolved once per load and everything is
 *   read under it (a swap of the directory link mid-read cannot mix versions);
 * - every file is opened through its resolved path and described by what was
 *   actually read (fstat: real path, size, mtime, ctime, inode);
 * - the fingerprint (real path, names, sizes, mtimes, ctimes, inodes of every
 *   file and directory) must be the same before the read, in the read, and
 *   after a settle time that follows it. A writer pausing mid-file for less
 *   than the settle time, or renaming several files within it, is caught.
 *
 * Otherwise the read is thrown away and tried again later; a mix is never compiled.
 *
 * Links (Kubernetes ConfigMap volumes: `x.cedar -> ..data/x.cedar`,
 * `..data -> ..2026_11_30_...`) are followed when they stay inside the policy
 * directory and refused when they leave it.
 */
import { createHash } from 'node:crypto';
import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import type { BundleFileMap } from './bundle-files.js';

/** Limits that keep a mistaken --policies / (a home directory, say) from being slurped. */
export const MAX_DIRECTORY_FILES = 10_000;
export const MAX_DIRECTORY_BYTES = 64 * 1024 * 1024;
/** Nested directories followed at most this deep (a link loop is also cut by the visited set). */
export const MAX_DIRECTORY_DEPTH = 32;
/**
 * How long the directory must stay unchanged after a read before the read is
 * accepted. Longer than the pauses of ordinary writers (an editor's save, a
 * `cp` of a few files, kubelet's swap take milliseconds); short enough that a
 * change still takes effect within a second (noticed + settle + read).
 */
export const DEFAULT_DIRECTORY_SETTLE_MS = 200;
export const MAX_DIRECTORY_SETTLE_MS = 60_000;
/** A one-shot read (CLI) retries a directory that changes under it this many times. */
const ONE_SHOT_ATTEMPTS = 50;
const ONE_SHOT_RETRY_MS = 20;
const SKIPPED_DIRS = new Set(['node_modules', '.git']);

/** The directory cannot be served as it is (missing, too big, a link leaving it): refuse, keep the last good set. */
export class PolicyDirectoryError extends Error {
  override name = 'PolicyDirectoryError';
}

/** The directory changed during a read: not an error, the read is simply tried again. */
export class DirectoryChanging extends Error {}

/** What a walk saw: the real root and one stamp per file and directory, keyed by relative path. */
interface Listing {
  root: string;
  stamps: Map<string, string>;
  /** Links to nowhere or outside the directory; refused only once the directory is seen to hold still. */
  problems: string[];
  /** Real paths of every directory walked and of every directory a file really lives in (what a watcher watches). */
  dirs: Set<string>;
}

export interface DirectoryFingerprint {
  root: string;
  /** Compare these: equal keys mean nothing in the directory changed (names, sizes, times, inodes, link targets). */
  key: string;
  /** Real paths of the directories whose entries make up the key (walked, or holding a file a link points at). */
  dirs: readonly string[];
}

function stampOf(st: Stats): string {
  return `${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.ino}`;
}

function fingerprintOf(listing: Listing): DirectoryFingerprint {
  const parts = [...listing.stamps].map(([rel, s]) => `${rel}=${s}`).sort();
  return { root: listing.root, key: `${listing.root}\n${parts.join('\n')}`, dirs: [...listing.dirs] };
}

function isInside(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

/** Missing files mid-walk mean the directory is changing; anything else is a real error. */
function changingOrThrow(err: unknown, what: string): never {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ESTALE')
    throw new DirectoryChanging(`${what} changed while it was read`);
  throw err;
}

/** The directory's real path, resolved once per load. */
async function resolveRoot(dir: string): Promise<string> {
  let root;
  try {
    root = await fs.realpath(dir);
  } catch (err) {
    // A missing or unreadable directory is the user's mistake: keep the system error, which says so with its path.
    if (typeof (err as NodeJS.ErrnoException).code === 'string') throw err;
    throw new PolicyDirectoryError(`${dir} cannot be read: ${(err as Error).message}`);
  }
  let st;
  try {
    st = await fs.stat(root);
  } catch (err) {
    // Resolved a moment ago and gone now: a swap removed it; the next look resolves the new one.
    changingOrThrow(err, dir);
  }
  if (!st.isDirectory()) throw new PolicyDirectoryError(`${dir} is not a directory`);
  return root;
}

/**
 * Visit every regular file under `root` (which must be a real path), skipping
 * dot files and SKIPPED_DIRS, following links that stay inside `root`.
 * `onFile` returns the file's stamp (from a stat, or from the fstat of what it read).
 */
async function walkTree(root: string, onFile: (rel: string, real: string) => Promise<string>): Promise<Listing> {
  const listing: Listing = { root, stamps: new Map(), problems: [], dirs: new Set([root]) };
  const visited = new Set<string>([root]);
  const walk = async (rel: string, realDir: string, depth: number): Promise<void> => {
    if (depth > MAX_DIRECTORY_DEPTH)
      throw new PolicyDirectoryError(`${rel} is nested more than ${MAX_DIRECTORY_DEPTH} directories deep`);
    let entries;
    try {
      // The directory's own stamp: a file created and deleted between two walks still changes it.
      listing.stamps.set(`${rel}/`, `${realDir}:${stampOf(await fs.stat(realDir))}`);
      listing.dirs.add(realDir);
      entries = await fs.readdir(realDir, { withFileTypes: true });
    } catch (err) {
      changingOrThrow(err, rel || 'the directory');
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const relPath = rel ? `${rel}/${e.name}` : e.name;
      let real = path.join(realDir, e.name);
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        let target = '';
        try {
          target = await fs.readlink(real);
          real = await fs.realpath(real);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'ENOENT' && code !== 'ELOOP') changingOrThrow(err, relPath);
          listing.stamps.set(relPath, `dangling:${target}`);
          listing.problems.push(`${relPath} is a link to nothing (${target})`);
          continue;
        }
        if (!isInside(root, real)) {
          listing.stamps.set(relPath, `outside:${real}`);
          listing.problems.push(
            `${relPath} links outside the policy directory (to ${real}); only links that stay inside it are followed`,
          );
          continue;
        }
        try {
          const st = await fs.stat(real);
          isDir = st.isDirectory();
          isFile = st.isFile();
        } catch (err) {
          changingOrThrow(err, relPath);
        }
      }
      if (isDir) {
        // A link back to a directory already walked (a loop, or an alias) adds nothing.
        if (SKIPPED_DIRS.has(e.name) || visited.has(real)) continue;
        visited.add(real);
        await walk(relPath, real, depth + 1);
      } else if (isFile) {
        listing.stamps.set(relPath, `${real}:${await onFile(relPath, real)}`);
        listing.dirs.add(path.dirname(real));
      }
    }
  };
  await walk('', root, 0);
  return listing;
}

/** Names, sizes, times and link targets of everything under the directory (its real path resolved now). */
export async function directoryFingerprint(dir: string): Promise<DirectoryFingerprint> {
  const root = await resolveRoot(dir);
  const listing = await walkTree(root, async (rel, real) => {
    try {
      return stampOf(await fs.stat(real));
    } catch (err) {
      changingOrThrow(err, rel);
    }
  });
  return fingerprintOf(listing);
}

/** Read every file under `root`, each described by the fstat of the descriptor it was read from. */
async function readTree(root: string): Promise<{ listing: Listing; files: BundleFileMap }> {
  const files: BundleFileMap = new Map();
  let bytes = 0;
  const listing = await walkTree(root, async (rel, real) => {
    let handle;
    try {
      handle = await fs.open(real, 'r');
    } catch (err) {
      changingOrThrow(err, rel);
    }
    try {
      const st = await handle.stat();
      if (st.size > MAX_DIRECTORY_BYTES - bytes)
        throw new PolicyDirectoryError(`${root} holds more than ${MAX_DIRECTORY_BYTES} bytes`);
      const data = await handle.readFile();
      // Written to while we read it: the stamp would not say so if the size came back the same.
      if (data.length !== st.size) throw new DirectoryChanging(`${rel} changed while it was read`);
      bytes += data.length;
      files.set(rel, data);
      if (files.size > MAX_DIRECTORY_FILES)
        throw new PolicyDirectoryError(`${root} has more than ${MAX_DIRECTORY_FILES} files`);
      return stampOf(st);
    } finally {
      await handle.close();
    }
  });
  return { listing, files };
}

export type SnapshotResult =
  | { kind: 'snapshot'; files: BundleFileMap; fingerprint: DirectoryFingerprint }
  | { kind: 'changing'; reason: string };

export interface SnapshotOptions {
  /** How long the directory must stay unchanged after the read. */
  settleMs: number;
  /** A fingerprint taken just before (the watcher's); taken here otherwise. */
  before?: DirectoryFingerprint;
}

/**
 * One attempt at a snapshot: `changing` when the directory moved during the
 * read or the settle time after it; throws PolicyDirectoryError when the
 * directory, holding still, cannot be served.
 */
export async function readDirectorySnapshot(dir: string, options: SnapshotOptions): Promise<SnapshotResult> {
  try {
    const before = options.before ?? (await directoryFingerprint(dir));
    const { listing, files } = await readTree(before.root);
    if (fingerprintOf(listing).key !== before.key)
      return { kind: 'changing', reason: 'the directory changed while it was read' };
    if (options.settleMs > 0) await new Promise((r) => setTimeout(r, options.settleMs));
    const after = await directoryFingerprint(dir);
    if (after.key !== before.key)
      return { kind: 'changing', reason: `the directory changed within ${options.settleMs} ms of the read` };
    if (listing.problems.length > 0) throw new PolicyDirectoryError(`${dir}: ${listing.problems.join('; ')}`);
    return { kind: 'snapshot', files, fingerprint: after };
  } catch (err) {
    if (err instanceof DirectoryChanging) return { kind: 'changing', reason: err.message };
    throw err;
  }
}

/** Read a directory once, as a snapshot (CLI: check, validate, bundle build). */
export async function readPolicyDirectory(dir: string, settleMs = 0): Promise<BundleFileMap> {
  let last = '';
  for (let i = 0; i < ONE_SHOT_ATTEMPTS; i++) {
    const r = await readDirectorySnapshot(dir, { settleMs });
    if (r.kind === 'snapshot') return r.files;
    last = r.reason;
    await new Promise((res) => setTimeout(res, ONE_SHOT_RETRY_MS));
  }
  throw new PolicyDirectoryError(`${dir} kept changing while it was read (${last})`);
}

/** Content-derived version for a directory: the same files give the same version on every server. */
export function directoryVersion(files: BundleFileMap): string {
  const h = createHash('sha256');
  for (const name of [...files.keys()].sort()) {
    h.update(name).update('\0').update(files.get(name)!).update('\0');
  }
  return `dir-${h.digest('hex').slice(0, 12)}`;
}
