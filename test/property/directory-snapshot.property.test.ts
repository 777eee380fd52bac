/**
 * For random sequences of directory changes at random timings (atomic
 * directory-symlink swaps, in-place rewrites pausing mid-file, several files
 * renamed over one another), the watcher hands on only sets that were
 * complete: the state the directory was left in after some change finished.
 * And it keeps up: once the directory holds still, the last state is served.
 *
 * Writers pause at most 25 ms mid-change; the settle time here is 100 ms (the
 * default is 200 ms), with a 10 ms poll, to keep the run to a few seconds.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { directoryVersion } from '../../src/bundle/format/policy-directory.js';
import { PolicyDirectoryWatcher } from '../../src/bundle/sources/policy-directory-watcher.js';
import type { BundleFileMap } from '../../src/bundle/format/bundle-files.js';
import {
  CHURN_VERSIONS,
  renameOverEach,
  rewriteWithPause,
  sleep,
  SymlinkSwapper,
  versionOf,
} from '../support/directory-churn.js';

const SETTLE_MS = 100;
const POLL_MS = 10;
const MAX_WRITER_PAUSE_MS = 25;

type Change =
  | { kind: 'swap'; to: number; after: number }
  | { kind: 'rewrite'; to: number; split: number; pause: number; after: number }
  | { kind: 'rename-over'; to: number; gap: number; after: number };

const version = fc.integer({ min: 0, max: CHURN_VERSIONS.length - 1 });
const after = fc.integer({ min: 0, max: 200 });
const pause = fc.integer({ min: 0, max: MAX_WRITER_PAUSE_MS });
const change: fc.Arbitrary<Change> = fc.oneof(
  fc.record({ kind: fc.constant('swap' as const), to: version, after }),
  fc.record({
    kind: fc.constant('rewrite' as const),
    to: version,
    split: fc.integer({ min: 1, max: 1000 }),
    pause,
    after,
  }),
  fc.record({ kind: fc.constant('rename-over' as const), to: version, gap: pause, after }),
);

/** What the directory the link points at holds now, as a version. */
function currentVersion(link: string): string {
  const files: Record<string, string> = {};
  for (const name of Object.keys(CHURN_VERSIONS[0])) files[name] = readFileSync(path.join(link, name), 'utf8');
  return versionOf(files);
}

async function apply(c: Change, swapper: SymlinkSwapper): Promise<void> {
  const target = CHURN_VERSIONS[c.to];
  if (c.kind === 'swap') swapper.swapTo(target);
  else if (c.kind === 'rename-over') await renameOverEach(swapper.link, target, c.gap);
  else {
    const text = target['a.cedar'];
    const at = 1 + (c.split % (text.length - 1));
    await rewriteWithPause(path.join(swapper.link, 'a.cedar'), text.slice(0, at), text.slice(at), c.pause);
  }
  await sleep(c.after);
}

async function runChanges(changes: Change[], settleMs: number): Promise<void> {
  const base = mkdtempSync(path.join(tmpdir(), 'authz-snapshot-'));
  const swapper = new SymlinkSwapper(base);
  swapper.swapTo(CHURN_VERSIONS[0]);
  const complete = new Set([versionOf(CHURN_VERSIONS[0])]);
  const served: string[] = [];
  const watcher = new PolicyDirectoryWatcher(
    swapper.link,
    (files: BundleFileMap | Error) => {
      if (files instanceof Error) throw files;
      served.push(directoryVersion(files));
    },
    { intervalMs: POLL_MS, settleMs },
  );
  try {
    const first = await watcher.start();
    expect(first).not.toBeInstanceOf(Error);
    served.push(directoryVersion(first as BundleFileMap));
    for (const c of changes) {
      await apply(c, swapper);
      complete.add(currentVersion(swapper.link));
    }
    const last = currentVersion(swapper.link);
    const until = Date.now() + 3000;
    while (served.at(-1) !== last && Date.now() < until) await sleep(POLL_MS);
    expect(served.filter((v) => !complete.has(v))).toEqual([]);
    expect(served.at(-1)).toBe(last);
  } finally {
    watcher.stop();
    rmSync(base, { recursive: true, force: true });
  }
}

describe('policy directory snapshots', () => {
  it('hand on only complete states, under any mix and timing of swaps, paused rewrites and rename-overs', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(change, { minLength: 3, maxLength: 8 }), (changes) => runChanges(changes, SETTLE_MS)),
      { numRuns: 6 },
    );
  }, 60_000);

  it('atomic directory-symlink swaps alone never mix, even with no settle time (the real path is resolved once per read)', async () => {
    const swapOnly = fc.record({
      kind: fc.constant('swap' as const),
      to: version,
      after: fc.integer({ min: 0, max: 30 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(swapOnly, { minLength: 10, maxLength: 40 }), (changes) => runChanges(changes, 0)),
      { numRuns: 5 },
    );
  }, 60_000);
});
