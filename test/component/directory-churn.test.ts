/**
 * A policy directory under churn, through the real server: whatever the
 * directory goes through, every answer is one some complete version gives
 * (the probe is denied by every complete version, and the version served is
 * the content hash of a complete version). And the churn is followed: when the
 * directory holds still, the server serves what it holds.
 *
 * Default settle time (200 ms), default poll; the writers pause at most 30 ms
 * mid-change, and every fifth or tenth change hold still until the server
 * serves it, so that versions do get served during the run.
 */
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server/authz-server.js';
import { type AuthzClient, connectAuthz } from '../support/grpc-client.js';
import { startQuietServer } from '../support/start-server.js';
import { waitFor } from '../support/wait.js';
import {
  CHURN_VERSIONS,
  COMPLETE_VERSIONS,
  ConfigMapVolume,
  HALF_A,
  PROBE,
  renameOverEach,
  rewriteWithPause,
  sleep,
  SymlinkSwapper,
  versionOf,
  writeFiles,
} from '../support/directory-churn.js';

const CHANGES = 100;
/** Hold still after a change for this long (longer than poll + settle + read), so that versions do get served. */
const HOLD_STILL_MS = 500;
const SHORT_HOLD_MS = 350;

/**
 * Hold still until the server serves `files` (a held-still directory is served
 * within about half a second; waiting for it, not sleeping a fixed time, keeps
 * the run honest on a loaded machine).
 */
async function holdStillUntilServed(files: Readonly<Record<string, string>>, atLeastMs: number): Promise<void> {
  await sleep(atLeastMs);
  const want = versionOf(files);
  const got = await waitFor(
    () => client!.answer(PROBE),
    (a) => a.version === want,
    20_000,
  );
  if (got.version !== want) throw new Error(`a directory held still was not served within 20 s (still ${got.version})`);
}

interface ProbeCounts {
  probes: number;
  /** Answers no complete version gives: /probe allowed, or a version that is not a complete one. */
  foreign: number;
  versions: Set<string>;
}

/** Probe the server (two callers in a loop) until `done` resolves. */
async function probeWhile(client: AuthzClient, done: Promise<void>): Promise<ProbeCounts> {
  const counts: ProbeCounts = { probes: 0, foreign: 0, versions: new Set() };
  let running = true;
  void done.finally(() => (running = false));
  const loop = async () => {
    while (running) {
      const a = await client.answer(PROBE);
      counts.probes++;
      counts.versions.add(a.version);
      if (a.allowed || !COMPLETE_VERSIONS.has(a.version)) counts.foreign++;
    }
  };
  await Promise.all([loop(), loop(), done]);
  return counts;
}

let base: string;
let server: RunningServer | undefined;
let client: AuthzClient | undefined;

async function serve(policies: string): Promise<void> {
  server = await startQuietServer({ policies });
  client = connectAuthz(server.grpcPort);
}

afterEach(async () => {
  client?.close();
  await server?.close();
  client = undefined;
  server = undefined;
  rmSync(base, { recursive: true, force: true });
});

function report(what: string, c: ProbeCounts): void {
  console.info(
    `${what}: ${c.probes} probes, ${c.foreign} answers no complete version gives, ${c.versions.size} versions served`,
  );
}

describe('a policy directory under churn', () => {
  it(`${CHANGES} atomic directory-symlink swaps with the forbid moving between files: never a mixed set`, async () => {
    base = mkdtempSync(path.join(tmpdir(), 'authz-churn-'));
    const swapper = new SymlinkSwapper(base);
    swapper.swapTo(CHURN_VERSIONS[0]);
    await serve(swapper.link);

    const churn = (async () => {
      for (let i = 1; i <= CHANGES; i++) {
        swapper.swapTo(CHURN_VERSIONS[i % 2]);
        // 100 swaps in about 10 s: mostly 10-50 ms apart, held still after every fifth.
        if (i % 5 === 0) await holdStillUntilServed(CHURN_VERSIONS[i % 2], SHORT_HOLD_MS);
        else await sleep(10 + Math.random() * 40);
      }
    })();
    const counts = await probeWhile(client!, churn);
    report('symlink swaps', counts);
    expect(counts.foreign).toBe(0);
    expect(counts.versions.size).toBe(2); // both complete versions were served along the way
    // Left on version 1 (100 is even): that is what is served.
    const last = await waitFor(
      () => client!.answer(PROBE),
      (a) => a.version === versionOf(CHURN_VERSIONS[0]),
      20_000,
    );
    expect(last).toMatchObject({ allowed: false, version: versionOf(CHURN_VERSIONS[0]) });
  }, 120_000);

  it(`${CHANGES} in-place rewrites that pause 30 ms half-way (the half allows the probe): never the half`, async () => {
    base = mkdtempSync(path.join(tmpdir(), 'authz-churn-'));
    writeFiles(base, CHURN_VERSIONS[0]);
    await serve(base);

    const file = path.join(base, 'a.cedar');
    const full = CHURN_VERSIONS[0]['a.cedar'];
    const churn = (async () => {
      for (let i = 1; i <= CHANGES; i++) {
        await rewriteWithPause(file, HALF_A, full.slice(HALF_A.length), 30);
        await sleep(i % 10 === 0 ? HOLD_STILL_MS : 10 + Math.random() * 20);
      }
    })();
    const counts = await probeWhile(client!, churn);
    report('half-written rewrites', counts);
    expect(counts.foreign).toBe(0);
    expect(counts.versions).toEqual(new Set([versionOf(CHURN_VERSIONS[0])]));
  }, 120_000);

  it('several files renamed over one another, up to 30 ms apart: never the state between the renames', async () => {
    base = mkdtempSync(path.join(tmpdir(), 'authz-churn-'));
    writeFiles(base, CHURN_VERSIONS[0]);
    await serve(base);

    const rounds = 40;
    const churn = (async () => {
      for (let i = 1; i <= rounds; i++) {
        await renameOverEach(base, CHURN_VERSIONS[i % 2], Math.random() * 30);
        if (i % 5 === 0) await holdStillUntilServed(CHURN_VERSIONS[i % 2], HOLD_STILL_MS);
        else await sleep(10 + Math.random() * 40);
      }
    })();
    const counts = await probeWhile(client!, churn);
    report('multi-file rename-over', counts);
    expect(counts.foreign).toBe(0);
    expect(counts.versions.size).toBe(2);
  }, 120_000);
});

describe('a Kubernetes ConfigMap volume (per-file links into ..data)', () => {
  it('becomes ready, follows a ..data swap, and refuses a link leaving the directory', async () => {
    base = mkdtempSync(path.join(tmpdir(), 'authz-configmap-'));
    const volume = new ConfigMapVolume(path.join(base, 'policies'));
    volume.update(CHURN_VERSIONS[0]);
    await serve(volume.dir);

    const ready = await fetch(`http://127.0.0.1:${server!.adminPort}/readyz`);
    expect(ready.status).toBe(200);
    expect(await client!.answer(PROBE)).toMatchObject({
      allowed: false,
      policies: ['forbid-probe'],
      version: versionOf(CHURN_VERSIONS[0]),
    });

    volume.update(CHURN_VERSIONS[1]);
    const swapped = await waitFor(
      () => client!.answer(PROBE),
      (a) => a.version === versionOf(CHURN_VERSIONS[1]),
      20_000,
    );
    expect(swapped).toMatchObject({
      allowed: false,
      policies: ['forbid-probe'],
      version: versionOf(CHURN_VERSIONS[1]),
    });

    // A link out of the volume (to a permissive file elsewhere) is refused; the last good set keeps serving.
    const outside = path.join(base, 'outside.cedar');
    writeFileSync(outside, '@id("outside")\npermit (principal, action, resource);\n');
    symlinkSync(outside, path.join(volume.dir, 'z-extra.cedar'));
    const bundle = await waitFor(
      async () =>
        (await fetch(`http://127.0.0.1:${server!.adminPort}/bundle`)).json() as Promise<{
          last_error?: { message: string };
        }>,
      (b) => b.last_error !== undefined && b.last_error !== null,
      20_000,
    );
    expect(bundle.last_error!.message).toMatch(/z-extra\.cedar links outside the policy directory/);
    expect(await client!.answer(PROBE)).toMatchObject({ allowed: false, version: versionOf(CHURN_VERSIONS[1]) });
  }, 30_000);
});
