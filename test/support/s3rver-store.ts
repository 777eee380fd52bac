/**
 * A real S3 protocol server (s3rver) on loopback for store tests, with its
 * data in a temp dir. It can be stopped and started again on the same port
 * and data, to play a store outage.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import './s3rver-atomic-put.js';
import { BundleStore } from '../../src/bundle/store/bundle-store.js';
import { createS3Client } from '../../src/bundle/store/s3-client.js';

// s3rver's built-in account. Servers under test read credentials through the
// real AWS chain, which starts with these variables.
process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

export const TEST_BUCKET = 'authz-test';

export class TestS3Store {
  private server: S3rver | undefined;
  private readonly clients: S3Client[] = [];

  private constructor(
    readonly dir: string,
    public port: number,
  ) {}

  static async start(): Promise<TestS3Store> {
    const dir = mkdtempSync(path.join(tmpdir(), 'authz-s3-'));
    const store = new TestS3Store(dir, 0);
    await store.up();
    const s3 = store.client();
    await s3.send(new CreateBucketCommand({ Bucket: TEST_BUCKET }));
    return store;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Start (again) on the same port and data. */
  async up(): Promise<void> {
    this.server = new S3rver({ address: '127.0.0.1', port: this.port, silent: true, directory: this.dir });
    const address = await this.server.run();
    this.port = address.port;
  }

  get isUp(): boolean {
    return this.server !== undefined;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closing = server.close();
    // close() waits for every open connection; a server polling over keep-alive can hold one open indefinitely.
    (server as unknown as { httpServer?: { closeAllConnections?: () => void } }).httpServer?.closeAllConnections?.();
    await closing;
  }

  client(): S3Client {
    const c = createS3Client({ endpoint: this.endpoint, maxAttempts: 1 });
    this.clients.push(c);
    return c;
  }

  bundleStore(bundle: string, prefix = 'bundles/'): BundleStore {
    return new BundleStore(this.client(), { bucket: TEST_BUCKET, prefix, bundle });
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.destroy();
    await this.down();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
