/** A real S3 protocol server (s3rver) on loopback, with a bucket, for store tests. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';
import { buildBundle } from '../../src/bundle/bundle-build.js';
import { activateVersion, pushBundle } from '../../src/bundle/bundle-publish.js';
import { BundleStore } from '../../src/bundle/bundle-store.js';
import type { BundleFileMap } from '../../src/bundle/bundle-files.js';
import { createS3Client } from '../../src/bundle/s3-client.js';
import { removeDir } from './policy-dir.js';

export interface TestStore {
  endpoint: string;
  bucket: string;
  bundle: string;
  store: BundleStore;
  /** Store flags as the CLI takes them. */
  flags: string[];
  /** Store settings as `serve` takes them (camelCase config keys). */
  serverFlags: Record<string, unknown>;
  /** Build, push and activate `files` as `version`. */
  publish(files: Record<string, string>, version: string): Promise<void>;
  push(files: Record<string, string>, version: string): Promise<void>;
  close(): Promise<void>;
}

export async function startTestStore(bundle = 'shop'): Promise<TestStore> {
  // s3rver knows one account; the SDK reads credentials from the environment.
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  const dir = mkdtempSync(path.join(tmpdir(), 'authz-s3-'));
  const bucket = 'authz';
  const s3rver = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: bucket }] });
  const { port } = await s3rver.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const s3 = createS3Client({ endpoint });
  const store = new BundleStore(s3, { bucket, prefix: 'bundles/', bundle });
  const push = async (files: Record<string, string>, version: string) => {
    const map: BundleFileMap = new Map(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)]));
    const built = await buildBundle(map, { name: bundle, version });
    await pushBundle(store, built.tarball, built.manifest);
  };
  return {
    endpoint,
    bucket,
    bundle,
    store,
    flags: ['--s3-endpoint', endpoint, '--bucket', bucket, '--bundle', bundle],
    serverFlags: { s3Endpoint: endpoint, bucket, bundle, pollInterval: '100ms' },
    push,
    async publish(files, version) {
      await push(files, version);
      await activateVersion(store, version);
    },
    async close() {
      s3.destroy();
      await s3rver.close();
      removeDir(dir);
    },
  };
}
