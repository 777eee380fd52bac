/** The bundle store tests' s3rver (test/support/s3rver-store.ts), with what the safety tests need on top. */
import { buildBundle } from '../../src/bundle/format/bundle-build.js';
import type { BundleFileMap } from '../../src/bundle/format/bundle-files.js';
import { activateVersion, pushBundle } from '../../src/operator/bundle-publish.js';
import type { BundleStore } from '../../src/bundle/store/bundle-store.js';
import { TEST_BUCKET, TestS3Store } from '../support/s3rver-store.js';

export interface TestStore {
  store: BundleStore;
  /** Store flags as the CLI takes them. */
  flags: string[];
  /** Store settings as `serve` takes them (camelCase config keys). */
  serverFlags: Record<string, unknown>;
  /** Build (running the bundle's tests), push and activate `files` as `version`. */
  publish(files: Record<string, string>, version: string): Promise<void>;
  push(files: Record<string, string>, version: string): Promise<void>;
  close(): Promise<void>;
}

export async function startTestStore(bundle = 'shop'): Promise<TestStore> {
  const s3 = await TestS3Store.start();
  const store = s3.bundleStore(bundle);
  const push = async (files: Record<string, string>, version: string) => {
    const map: BundleFileMap = new Map(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)]));
    const built = await buildBundle(map, { name: bundle, version });
    await pushBundle(store, built.tarball, built.manifest);
  };
  return {
    store,
    flags: ['--s3-endpoint', s3.endpoint, '--bucket', TEST_BUCKET, '--bundle', bundle],
    serverFlags: { s3Endpoint: s3.endpoint, bucket: TEST_BUCKET, bundle, pollInterval: '100ms' },
    push,
    async publish(files, version) {
      await push(files, version);
      await activateVersion(store, version);
    },
    close: () => s3.close(),
  };
}
