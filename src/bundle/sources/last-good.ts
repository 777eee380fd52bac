/**
 * The last good bundle on local disk (--state-dir), so a restarted server can
 * serve while the store is unreachable. Layout under <stateDir>/<bundle>/:
 *
 *   <sha256>.tar.gz     the tarball exactly as downloaded
 *   last-good.json      which tarball, its pointer and signature
 *
 * The tarball is written first, under its own hash, and last-good.json is
 * renamed into place after it: a crash at any point leaves either the old
 * pair or the new one, never a record naming a half-written file.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { pointerSchema, type BundlePointer } from '../store/bundle-store.js';
import { segmentProblem, sha256 } from '../format/manifest.js';

export const LAST_GOOD_FILE = 'last-good.json';

const recordSchema = z.object({
  bundle: z.string(),
  version: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  saved_at: z.string(),
  pointer: pointerSchema,
  /** The detached signature object, as fetched (base64 text), when the bundle was signed. */
  signature: z.string().optional(),
});

export type LastGoodRecord = z.infer<typeof recordSchema>;

export class LastGoodError extends Error {}

export class LastGoodStore {
  readonly dir: string;

  constructor(
    stateDir: string,
    readonly bundle: string,
  ) {
    const problem = segmentProblem('bundle name', bundle);
    if (problem) throw new LastGoodError(problem);
    this.dir = path.join(stateDir, bundle);
  }

  /** Create the directory and prove it is writable (called at start-up, so a bad --state-dir stops it). */
  async ensureWritable(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    const probe = path.join(this.dir, `.write-test-${process.pid}`);
    await fs.writeFile(probe, '');
    await fs.rm(probe, { force: true });
  }

  async save(tarball: Buffer, pointer: BundlePointer, signature?: Buffer): Promise<void> {
    const hash = sha256(tarball);
    await fs.mkdir(this.dir, { recursive: true });
    const tarName = `${hash}.tar.gz`;
    await writeAtomically(path.join(this.dir, tarName), tarball);
    const record: LastGoodRecord = {
      bundle: this.bundle,
      version: pointer.version,
      sha256: hash,
      saved_at: new Date().toISOString(),
      pointer,
      ...(signature ? { signature: signature.toString('ascii') } : {}),
    };
    await writeAtomically(path.join(this.dir, LAST_GOOD_FILE), Buffer.from(JSON.stringify(record, null, 2) + '\n'));
    for (const name of await fs.readdir(this.dir)) {
      if (name.endsWith('.tar.gz') && name !== tarName) await fs.rm(path.join(this.dir, name), { force: true });
    }
  }

  /** The saved bundle, or undefined when there is none. Throws LastGoodError when what is there is damaged. */
  async load(): Promise<{ record: LastGoodRecord; tarball: Buffer } | undefined> {
    let text: string;
    try {
      text = await fs.readFile(path.join(this.dir, LAST_GOOD_FILE), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new LastGoodError(`cannot read ${LAST_GOOD_FILE}: ${(err as Error).message}`);
    }
    let record: LastGoodRecord;
    try {
      record = recordSchema.parse(JSON.parse(text));
    } catch (err) {
      throw new LastGoodError(`${path.join(this.dir, LAST_GOOD_FILE)} is damaged: ${(err as Error).message}`);
    }
    const file = path.join(this.dir, `${record.sha256}.tar.gz`);
    const tarball = await fs.readFile(file).catch((err: Error) => {
      throw new LastGoodError(`cannot read ${file}: ${err.message}`);
    });
    if (sha256(tarball) !== record.sha256) throw new LastGoodError(`${file} does not match its sha256; ignoring it`);
    return { record, tarball };
  }

  /** The saved tarball when it is the one with this hash (saves a download at restart). */
  async loadIfHash(hash: string): Promise<{ record: LastGoodRecord; tarball: Buffer } | undefined> {
    const saved = await this.load().catch(() => undefined);
    return saved && saved.record.sha256 === hash ? saved : undefined;
  }
}

async function writeAtomically(file: string, data: Buffer): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const handle = await fs.open(tmp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
}
