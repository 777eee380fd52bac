/**
 * The policy directory as a bundle source: read it whole, and watch it.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { BundleFileMap } from './bundle-files.js';

/** Limits that keep a mistaken --policies / (a home directory, say) from being slurped. */
export const MAX_DIRECTORY_FILES = 10_000;
export const MAX_DIRECTORY_BYTES = 64 * 1024 * 1024;
const SKIPPED_DIRS = new Set(['node_modules', '.git']);

/**
 * Visit every regular file under `dir` (relative paths), skipping dot files and
 * SKIPPED_DIRS. A directory that cannot be read throws, unless `onUnreadable`
 * is given (the fingerprint records it instead: a vanished directory is a change).
 */
async function walkFiles(dir: string, visit: (relPath: string) => Promise<void>, onUnreadable?: (rel: string) => void): Promise<void> {
  const walk = async (rel: string): Promise<void> => {
    let entries;
    try {
      entries = await fs.readdir(path.join(dir, rel), { withFileTypes: true });
    } catch (err) {
      if (!onUnreadable) throw err;
      onUnreadable(rel);
      return;
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const relPath = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (!SKIPPED_DIRS.has(e.name)) await walk(relPath);
      } else if (e.isFile()) {
        await visit(relPath);
      }
    }
  };
  await walk('');
}

export async function readPolicyDirectory(dir: string): Promise<BundleFileMap> {
  const files: BundleFileMap = new Map();
  let bytes = 0;
  await walkFiles(dir, async (relPath) => {
    const data = await fs.readFile(path.join(dir, relPath));
    bytes += data.length;
    files.set(relPath, data);
    if (files.size > MAX_DIRECTORY_FILES) throw new Error(`${dir} has more than ${MAX_DIRECTORY_FILES} files`);
    if (bytes > MAX_DIRECTORY_BYTES) throw new Error(`${dir} holds more than ${MAX_DIRECTORY_BYTES} bytes`);
  });
  return files;
}

/** Content-derived version for a directory: the same files give the same version on every server. */
export function directoryVersion(files: BundleFileMap): string {
  const h = createHash('sha256');
  for (const name of [...files.keys()].sort()) {
    h.update(name).update('\0').update(files.get(name)!).update('\0');
  }
  return `dir-${h.digest('hex').slice(0, 12)}`;
}

/** Cheap change detector: names, sizes and mtimes of every file. */
export async function directoryFingerprint(dir: string): Promise<string> {
  const parts: string[] = [];
  await walkFiles(
    dir,
    async (relPath) => {
      try {
        const st = await fs.stat(path.join(dir, relPath));
        parts.push(`${relPath}:${st.size}:${st.mtimeMs}`);
      } catch {
        parts.push(`gone:${relPath}`);
      }
    },
    (rel) => parts.push(`missing:${rel}`),
  );
  return parts.sort().join('|');
}

export const DIRECTORY_POLL_MS = 250;

/**
 * Polls the directory's fingerprint. Polling (not fs.watch) because editors
 * replace files by rename, ConfigMap volumes swap symlinks, and fs.watch misses
 * both in different ways; a stat of a few files every 250 ms costs nothing and
 * keeps "a change takes effect within 1 s" true everywhere.
 */
export class PolicyDirectoryWatcher {
  private timer: NodeJS.Timeout | undefined;
  private last = '';
  private busy = false;

  constructor(
    private readonly dir: string,
    private readonly onChange: (files: BundleFileMap | Error) => void | Promise<void>,
    private readonly intervalMs: number = DIRECTORY_POLL_MS,
  ) {}

  /** Reads the directory once (returns its files or the error) and starts watching. */
  async start(): Promise<BundleFileMap | Error> {
    this.last = await directoryFingerprint(this.dir);
    const first = await readPolicyDirectory(this.dir).catch((e: Error) => e);
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
    return first;
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const fp = await directoryFingerprint(this.dir);
      if (fp === this.last) return;
      this.last = fp;
      const files = await readPolicyDirectory(this.dir).catch((e: Error) => e);
      await this.onChange(files);
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
