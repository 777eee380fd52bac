/**
 * The shadow version loader against a real s3rver: a shadow version the same
 * bytes would fail again (here its sha256 does not match the pointer) is
 * downloaded once and not again on every poll, until the pointer names
 * another one or clears and names it again; one whose compile worker failed
 * is tried again on the next poll, and loads once a worker answers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ActivePolicySet } from '../../src/bundle/active-policy-set.js';
import { ShadowVersionLoader } from '../../src/bundle/sources/shadow-version-loader.js';
import type { BundlePointer, BundleStore } from '../../src/bundle/store/bundle-store.js';
import type { CompileWorkerLimits } from '../../src/cedar/compile.js';
import { createLogger } from '../../src/observability/logger.js';
import { AuthzMetrics } from '../../src/observability/metrics.js';
import { startTestStore, type TestStore } from '../support/s3-store.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function storeWithV1(): Promise<{ s3: TestStore; pointer: BundlePointer }> {
  const s3 = await startTestStore();
  cleanups.push(() => s3.close());
  await s3.publish({ 'main.cedar': '@id("open") permit(principal, action, resource);' }, 'v1');
  const read = await s3.store.getPointer({});
  if (read.kind !== 'found') throw new Error(`no pointer: ${read.kind}`);
  return { s3, pointer: read.pointer };
}

/** The store, counting the downloads the loader asks of it. */
function countingDownloads(store: BundleStore): { store: BundleStore; downloads: () => number } {
  let n = 0;
  const getVersion = store.getVersion.bind(store);
  store.getVersion = (...args: Parameters<BundleStore['getVersion']>) => {
    n++;
    return getVersion(...args);
  };
  return { store, downloads: () => n };
}

function loaderOn(store: BundleStore, worker: CompileWorkerLimits = {}) {
  const shadowVersion = new ActivePolicySet({ worker });
  const loader = new ShadowVersionLoader({
    store,
    shadowVersion,
    logger: createLogger({ level: 'silent' }),
    metrics: new AuthzMetrics(false),
  });
  cleanups.push(() => loader.stop());
  return { loader, shadowVersion };
}

/** One poll's worth: hand the loader the pointer and wait for what it started. */
function poll(loader: ShadowVersionLoader, pointer: BundlePointer | null): Promise<void> {
  return loader.onPolled(pointer);
}

describe('shadow version retries', () => {
  it('a shadow whose bytes fail is fetched once, not on every poll, until it is named again', async () => {
    const { s3, pointer } = await storeWithV1();
    const { store, downloads } = countingDownloads(s3.store);
    const { loader } = loaderOn(store);
    const broken = { ...pointer, shadow: { version: 'v1', sha256: '0'.repeat(64), set_at: 'now' } };
    for (let i = 0; i < 5; i++) await poll(loader, broken);
    expect(downloads()).toBe(1);
    expect(loader.describe().last_error).toMatch(/sha256 mismatch/);

    await poll(loader, pointer);
    await poll(loader, broken);
    expect(downloads()).toBe(2);
  });

  it('a shadow whose compile worker failed is tried again on the next poll', async () => {
    const { s3, pointer } = await storeWithV1();
    const limits: CompileWorkerLimits = { timeLimitMs: 1 };
    const { loader, shadowVersion } = loaderOn(s3.store, limits);
    const named = { ...pointer, shadow: { version: 'v1', sha256: pointer.sha256, set_at: 'now' } };
    await poll(loader, named);
    expect(loader.describe().last_error).toMatch(/compile worker did not finish within 1 ms/);
    limits.timeLimitMs = 120_000;
    await poll(loader, named);
    expect(shadowVersion.current?.version).toBe('v1');
    expect(loader.describe()).toMatchObject({ version: 'v1', last_error: null });
  });
});
