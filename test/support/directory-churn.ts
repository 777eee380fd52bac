/**
 * Two complete versions of a policy directory whose only `forbid` moves
 * between files, and the writers that churn a directory between them the ways
 * real deployments do: atomic directory-symlink swaps, Kubernetes ConfigMap
 * `..data` swaps, in-place rewrites that pause half-way, and several files
 * renamed over one another one after the other.
 *
 * Every complete version denies GET /probe; a mix of them (a.cedar of one,
 * b.cedar of the other) or a half-written a.cedar allows it. Every complete
 * version's content hash is known, so a served version outside that set is a
 * set no one wrote.
 */
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { SimpleRequest } from '../../src/envoy/simple-request.js';
import { directoryVersion } from '../../src/bundle/format/policy-directory.js';

const PERMIT_ALL = '@id("allow-all")\npermit (principal, action, resource);\n';
const FORBID_PROBE = '@id("forbid-probe")\nforbid (principal, action, resource) when { context.path == "/probe" };\n';

/** version 1 keeps the forbid in a.cedar, version 2 in b.cedar. */
export const CHURN_VERSIONS: ReadonlyArray<Readonly<Record<string, string>>> = [
  {
    'a.cedar': PERMIT_ALL + FORBID_PROBE,
    'b.cedar': '@id("v1")\npermit (principal, action, resource) when { context.path == "/v1" };\n',
  },
  {
    'a.cedar': PERMIT_ALL,
    'b.cedar': FORBID_PROBE + '@id("v2")\npermit (principal, action, resource) when { context.path == "/v2" };\n',
  },
];

/** The half of version 1's a.cedar a paused writer leaves behind: it allows /probe. */
export const HALF_A = PERMIT_ALL;

export function versionOf(files: Readonly<Record<string, string>>): string {
  return directoryVersion(new Map(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)])));
}

export const COMPLETE_VERSIONS: ReadonlySet<string> = new Set(CHURN_VERSIONS.map(versionOf));

export const PROBE: SimpleRequest = { method: 'GET', path: '/probe', host: 'svc' };

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function writeFiles(dir: string, files: Readonly<Record<string, string>>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
}

/**
 * `policies -> versions/N`, swapped with `ln -sfn`'s atomic rename; each swap
 * writes a fresh directory and deletes the one before the last (as a deploy does).
 */
export class SymlinkSwapper {
  readonly link: string;
  private n = 0;
  private previous: string[] = [];

  constructor(private readonly base: string) {
    this.link = path.join(base, 'policies');
  }

  swapTo(files: Readonly<Record<string, string>>): void {
    const dir = path.join(this.base, `v${++this.n}`);
    writeFiles(dir, files);
    const tmp = path.join(this.base, `.policies-${this.n}`);
    symlinkSync(dir, tmp);
    renameSync(tmp, this.link);
    this.previous.push(dir);
    while (this.previous.length > 2) rmSync(this.previous.shift()!, { recursive: true, force: true });
  }
}

/**
 * A Kubernetes ConfigMap volume as kubelet's atomic writer lays it out:
 * `NAME -> ..data/NAME`, `..data -> ..<timestamp>`; an update writes a new
 * timestamped directory, renames a new `..data` link over the old one, then
 * removes the old directory.
 */
export class ConfigMapVolume {
  private n = 0;
  private current: string | undefined;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  update(files: Readonly<Record<string, string>>): void {
    const stamp = `..2026_11_30_12_00_${String(++this.n).padStart(2, '0')}.${process.pid}`;
    writeFiles(path.join(this.dir, stamp), files);
    symlinkSync(stamp, path.join(this.dir, '..data_tmp'));
    renameSync(path.join(this.dir, '..data_tmp'), path.join(this.dir, '..data'));
    for (const name of Object.keys(files)) {
      try {
        symlinkSync(path.join('..data', name), path.join(this.dir, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    if (this.current) rmSync(path.join(this.dir, this.current), { recursive: true, force: true });
    this.current = stamp;
  }
}

/** Rewrite `file` in place: the first part, a pause, the rest (an editor or `cat >` that stalls). */
export async function rewriteWithPause(file: string, first: string, rest: string, pauseMs: number): Promise<void> {
  const handle = await open(file, 'w');
  try {
    await handle.write(first);
    await sleep(pauseMs);
    await handle.write(rest);
  } finally {
    await handle.close();
  }
}

/** Rename each file's new text over it, one after the other, `gapMs` apart (a script updating several files). */
export async function renameOverEach(
  dir: string,
  files: Readonly<Record<string, string>>,
  gapMs: number,
): Promise<void> {
  const names = Object.keys(files);
  for (const name of names) writeFileSync(path.join(dir, `.${name}.tmp`), files[name]);
  for (let i = 0; i < names.length; i++) {
    if (i > 0) await sleep(gapMs);
    renameSync(path.join(dir, `.${names[i]}.tmp`), path.join(dir, names[i]));
  }
}

export { writeFiles };
