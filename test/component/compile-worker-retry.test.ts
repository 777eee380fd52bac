/**
 * A compile worker that fails (here: stopped at its time limit, a real child
 * process) has not judged the bundle. The S3 source tries the same pointer
 * again with backoff, and activates it once a worker answers; a bundle whose
 * workers keep failing is tried COMPILE_WORKER_ATTEMPTS times, then left
 * refused until the pointer changes. The directory source, which no edit
 * would wake, retries the same way.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ActivePolicySet } from '../../src/bundle/active-policy-set.js';
import { DIRECTORY_WORKER_ATTEMPTS, DirectoryBundleSource } from '../../src/bundle/sources/directory-source.js';
import { COMPILE_WORKER_ATTEMPTS, S3BundleSyncer } from '../../src/bundle/sources/s3-bundle-syncer.js';
import type { CompileWorkerLimits } from '../../src/cedar/compile.js';
import { createLogger } from '../../src/observability/logger.js';
import { AuthzMetrics } from '../../src/observability/metrics.js';
import { startTestStore, type TestStore } from '../support/s3-store.js';
import { eventually } from '../support/wait.js';

const OPEN = { 'main.cedar': '@id("open") permit(principal, action, resource);' };
/** Far below a worker's start-up: every compile fails, for real, until the test lifts it. */
const TOO_SHORT = { timeLimitMs: 1 };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A set whose worker limits the test can change between attempts, and the refusals it saw. */
function policySetWithWorker(limits: CompileWorkerLimits) {
  const policySet = new ActivePolicySet({ worker: limits });
  const refusals: string[] = [];
  policySet.observe({ onRefused: (err) => refusals.push(err.message) });
  return { policySet, refusals };
}

async function syncerOn(s3: TestStore, policySet: ActivePolicySet): Promise<S3BundleSyncer> {
  const syncer = new S3BundleSyncer({
    store: s3.store,
    policySet,
    metrics: new AuthzMetrics(false),
    logger: createLogger({ level: 'silent' }),
    pollIntervalMs: 50,
    random: () => 0,
  });
  cleanups.push(() => syncer.stop());
  await syncer.start();
  return syncer;
}

/** v1 published, and a syncer started on it whose compile workers all fail until the test lifts `limits`. */
async function syncerWithFailingWorkers() {
  const s3 = await startTestStore();
  cleanups.push(() => s3.close());
  await s3.publish(OPEN, 'v1');
  const limits: CompileWorkerLimits = { ...TOO_SHORT };
  const { policySet, refusals } = policySetWithWorker(limits);
  await syncerOn(s3, policySet);
  return { s3, limits, policySet, refusals };
}

describe('a failed compile worker is retried, not taken as a refusal', () => {
  it('S3: the pointer is tried again and served once a worker answers', async () => {
    const { limits, policySet, refusals } = await syncerWithFailingWorkers();
    expect(policySet.current).toBeNull();
    expect(refusals[0]).toMatch(/^Cedar compile worker did not finish within 1 ms/);

    limits.timeLimitMs = 120_000;
    await eventually(() => policySet.current?.version === 'v1', 30_000);
    expect(refusals).toHaveLength(1);
  });

  it(`S3: after ${COMPILE_WORKER_ATTEMPTS} failed workers the bundle stays refused until the pointer moves`, async () => {
    const { s3, limits, policySet, refusals } = await syncerWithFailingWorkers();
    await eventually(() => refusals.length >= COMPILE_WORKER_ATTEMPTS, 30_000);
    // Backoff after the last attempt would be 50 ms × 2^3; ten times that and no fourth worker.
    await new Promise((r) => setTimeout(r, 4000));
    expect(refusals).toHaveLength(COMPILE_WORKER_ATTEMPTS);
    expect(policySet.current).toBeNull();

    limits.timeLimitMs = 120_000;
    await s3.publish({ 'main.cedar': '@id("v2") permit(principal, action, resource);' }, 'v2');
    await eventually(() => policySet.current?.version === 'v2', 30_000);
  });

  it('directory: the same snapshot is compiled again', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'authz-worker-retry-'));
    writeFileSync(path.join(dir, 'main.cedar'), OPEN['main.cedar']);
    const limits: CompileWorkerLimits = { ...TOO_SHORT };
    const { policySet, refusals } = policySetWithWorker(limits);
    const source = new DirectoryBundleSource(dir, policySet, 10);
    cleanups.push(() => source.stop());
    await source.start();
    expect(policySet.current).toBeNull();
    expect(refusals).toHaveLength(1);

    limits.timeLimitMs = 120_000;
    await eventually(() => policySet.current?.version.startsWith('dir-'), 30_000);
    expect(refusals).toHaveLength(1);
    expect(DIRECTORY_WORKER_ATTEMPTS).toBeGreaterThan(1);
  });
});
