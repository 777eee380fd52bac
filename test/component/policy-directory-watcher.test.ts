/**
 * The policy directory watcher notices changes by events, a cheap check of the
 * configured path's real path, and a slow full poll; it looks at the whole
 * directory only when one of them says so. Each case here turns the safety
 * net off (a full poll once a minute), so a change is seen only if the
 * watching itself works; and with nothing changing, nothing is walked.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { BundleFileMap } from '../../src/bundle/format/bundle-files.js';
import { PolicyDirectoryWatcher, type WatcherOptions } from '../../src/bundle/sources/policy-directory-watcher.js';
import { eventually } from '../support/wait.js';
import { sleep } from '../support/directory-churn.js';

const NO_SAFETY_NET = { intervalMs: 20, settleMs: 30, fullCheckMs: 60_000 } satisfies WatcherOptions;
const WAIT_MS = 5_000;

let stopAll: Array<() => void> = [];
afterEach(() => {
  for (const stop of stopAll) stop();
  stopAll = [];
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'authz-watch-'));
  stopAll.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Starts a watcher; `served` collects the a.cedar text of every set handed on (or the error message). */
async function watch(dir: string, options: WatcherOptions) {
  const served: string[] = [];
  const watcher = new PolicyDirectoryWatcher(
    dir,
    (files: BundleFileMap | Error) => {
      served.push(files instanceof Error ? `error: ${files.message}` : String(files.get('a.cedar')));
    },
    options,
  );
  stopAll.unshift(() => watcher.stop());
  const first = await watcher.start();
  if (first instanceof Error) throw first;
  served.push(String(first.get('a.cedar')));
  return { watcher, served, last: () => served.at(-1) };
}

const policy = (n: number) => `@id("p${n}") permit (principal, action, resource);\n`;

describe('policy directory watcher', () => {
  it('an in-place edit, a new file and a new subdirectory are seen by events alone', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'a.cedar'), policy(1));
    const w = await watch(dir, NO_SAFETY_NET);
    expect(w.watcher.mode).toBe('events');

    writeFileSync(path.join(dir, 'a.cedar'), policy(2));
    await eventually(() => w.last() === policy(2), WAIT_MS);

    mkdirSync(path.join(dir, 'team'));
    writeFileSync(path.join(dir, 'team', 'b.cedar'), policy(3));
    writeFileSync(path.join(dir, 'a.cedar'), policy(4));
    await eventually(() => w.last() === policy(4), WAIT_MS);
    // The subdirectory made after start is watched too: an edit inside it alone is seen.
    const handedOn = w.served.length;
    writeFileSync(path.join(dir, 'team', 'b.cedar'), policy(5));
    await eventually(() => w.served.length > handedOn, WAIT_MS);
  });

  it('the directory deleted and made again under the same path is seen, and so are edits inside the new one', async () => {
    const base = tempDir();
    const dir = path.join(base, 'policies');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'a.cedar'), policy(1));
    const w = await watch(dir, NO_SAFETY_NET);

    rmSync(dir, { recursive: true });
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'a.cedar'), policy(2));
    await eventually(() => w.last() === policy(2), WAIT_MS);
    writeFileSync(path.join(dir, 'a.cedar'), policy(3));
    await eventually(() => w.last() === policy(3), WAIT_MS);
  });

  it('a swapped link anywhere on the configured path is seen (not only the last one)', async () => {
    const base = tempDir();
    for (const [release, n] of [
      ['r1', 1],
      ['r2', 2],
    ] as const) {
      mkdirSync(path.join(base, release, 'policies'), { recursive: true });
      writeFileSync(path.join(base, release, 'policies', 'a.cedar'), policy(n));
    }
    symlinkSync(path.join(base, 'r1'), path.join(base, 'current'));
    const w = await watch(path.join(base, 'current', 'policies'), NO_SAFETY_NET);
    expect(w.last()).toBe(policy(1));

    symlinkSync(path.join(base, 'r2'), path.join(base, 'current.next'));
    renameSync(path.join(base, 'current.next'), path.join(base, 'current'));
    await eventually(() => w.last() === policy(2), WAIT_MS);
  });

  it('a directory that goes away is reported, and served again when it is back', async () => {
    const base = tempDir();
    const dir = path.join(base, 'policies');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'a.cedar'), policy(1));
    const w = await watch(dir, NO_SAFETY_NET);

    rmSync(dir, { recursive: true });
    await eventually(() => w.last()?.startsWith('error: '), WAIT_MS);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'a.cedar'), policy(2));
    await eventually(() => w.last() === policy(2), WAIT_MS);
  });

  it('while nothing changes, the directory is not walked', async () => {
    const dir = tempDir();
    for (let i = 0; i < 20; i++) writeFileSync(path.join(dir, `p${i}.cedar`), policy(i));
    writeFileSync(path.join(dir, 'a.cedar'), policy(1));
    const w = await watch(dir, NO_SAFETY_NET);
    // The looks that follow start-up (watches set up, then one more look) are over once one look finds nothing new.
    await eventually(async () => {
      const before = w.watcher.looks;
      await sleep(200);
      return w.watcher.looks === before;
    }, WAIT_MS);
    const settled = w.watcher.looks;
    await sleep(500); // 25 cheap checks at intervalMs 20
    expect(w.watcher.looks).toBe(settled);
  });

  it('without events (fs.watch unavailable) it polls the whole directory, as before', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'a.cedar'), policy(1));
    const w = await watch(dir, { ...NO_SAFETY_NET, noEvents: true });
    expect(w.watcher.mode).toBe('polling');
    writeFileSync(path.join(dir, 'a.cedar'), policy(2));
    await eventually(() => w.last() === policy(2), WAIT_MS);
    const looks = w.watcher.looks;
    await eventually(() => w.watcher.looks > looks + 3, WAIT_MS);
  });
});
