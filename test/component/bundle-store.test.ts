/**
 * Publishing against a real S3 protocol server (s3rver on loopback):
 * push, activate, rollback, list, and the refusals on the way.
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../../src/build/bundle-build.js';
import { activateVersion, pushBundle, rollbackBundle } from '../../src/operator/bundle-publish.js';
import { VersionExistsError } from '../../src/bundle/store/bundle-store.js';
import { sha256 } from '../../src/bundle/format/manifest.js';
import { build, policyFiles, publish } from '../support/bundle-fixtures.js';
import { TEST_BUCKET, TestS3Store } from '../support/s3rver-store.js';

let s3: TestS3Store;
beforeAll(async () => {
  s3 = await TestS3Store.start();
});
afterAll(async () => {
  await s3.close();
});

describe('bundle store on s3rver', () => {
  it('push, activate, rollback, rollback again: the pointer walks v1 → v2 → v1 → v2', async () => {
    const store = s3.bundleStore('walk');
    const v1 = await publish(store, 'v1', 'open');
    const v2 = await publish(store, 'v2', 'closed');

    const a1 = await activateVersion(store, 'v1', { now: new Date('2026-01-01T00:00:00Z') });
    expect(a1.pointer).toEqual({
      version: 'v1',
      sha256: v1.sha256,
      activated_at: '2026-01-01T00:00:00.000Z',
      previous: null,
    });
    const a2 = await activateVersion(store, 'v2');
    expect(a2.pointer).toMatchObject({ version: 'v2', sha256: v2.sha256, previous: 'v1' });

    const r1 = await rollbackBundle(store);
    expect(r1.pointer).toMatchObject({ version: 'v1', sha256: v1.sha256, previous: 'v2' });
    const r2 = await rollbackBundle(store);
    expect(r2.pointer).toMatchObject({ version: 'v2', previous: 'v1' });

    // What is stored is what servers read.
    const read = await store.getPointer();
    expect(read.kind === 'found' && read.pointer.version).toBe('v2');
  });

  it('stores the layout the docs promise: <prefix><name>/<version>/bundle.tar.gz and <prefix><name>/current.json', async () => {
    const store = s3.bundleStore('layout', 'team-a/');
    const built = await publish(store, '2026.01.1', 'open');
    await activateVersion(store, '2026.01.1');
    const client = s3.client();
    const tar = await client.send(
      new GetObjectCommand({ Bucket: TEST_BUCKET, Key: 'team-a/layout/2026.01.1/bundle.tar.gz' }),
    );
    expect(Buffer.from(await tar.Body!.transformToByteArray()).equals(built.tarball)).toBe(true);
    const pointer = await client.send(new GetObjectCommand({ Bucket: TEST_BUCKET, Key: 'team-a/layout/current.json' }));
    expect(JSON.parse(await pointer.Body!.transformToString())).toMatchObject({
      version: '2026.01.1',
      sha256: built.sha256,
      previous: null,
    });
  });

  it('an unchanged pointer answers 304 to the ETag of the last read; a changed one answers in full', async () => {
    const store = s3.bundleStore('etag');
    await publish(store, 'v1', 'open');
    await publish(store, 'v2', 'closed');
    await activateVersion(store, 'v1');
    const first = await store.getPointer();
    expect(first.kind).toBe('found');
    const etag = first.kind === 'found' ? first.etag : undefined;
    expect(etag).toBeTruthy();
    expect(await store.getPointer({ ifNoneMatch: etag })).toEqual({ kind: 'not-modified' });
    await activateVersion(store, 'v2');
    const changed = await store.getPointer({ ifNoneMatch: etag });
    expect(changed.kind === 'found' && changed.pointer.version).toBe('v2');
  });

  it('refuses to overwrite a version', async () => {
    const store = s3.bundleStore('immutable');
    await publish(store, 'v1', 'open');
    const again = await build('immutable', 'v1', 'closed');
    const err = await pushBundle(store, again.tarball, again.manifest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VersionExistsError);
    expect((err as Error).message).toBe(
      `version v1 already exists at s3://${TEST_BUCKET}/bundles/immutable/v1/bundle.tar.gz; versions are immutable, push a new version`,
    );
  });

  it('refuses to push a bundle built under another name', async () => {
    const store = s3.bundleStore('named');
    const other = await build('other', 'v1', 'open');
    await expect(pushBundle(store, other.tarball, other.manifest)).rejects.toThrow(
      /built as "other" but --bundle is "named"/,
    );
  });

  it('refuses to activate a version that does not exist, and leaves the pointer alone', async () => {
    const store = s3.bundleStore('missing');
    await publish(store, 'v1', 'open');
    await activateVersion(store, 'v1');
    await expect(activateVersion(store, 'v9')).rejects.toThrow(
      /version v9 does not exist at s3:\/\/.*\/bundles\/missing\/v9\/bundle\.tar\.gz; push it first/,
    );
    const read = await store.getPointer();
    expect(read.kind === 'found' && read.pointer.version).toBe('v1');
  });

  it('refuses to activate a version whose tarball changed after push (hash mismatch)', async () => {
    const store = s3.bundleStore('tampered');
    const v1 = await publish(store, 'v1', 'open');
    // Someone overwrites the tarball in place, keeping the push-time metadata.
    const evil = await build('tampered', 'v1', 'closed');
    await s3.client().send(
      new PutObjectCommand({
        Bucket: TEST_BUCKET,
        Key: store.versionKey('v1'),
        Body: evil.tarball,
        Metadata: { sha256: v1.sha256 },
      }),
    );
    await expect(activateVersion(store, 'v1')).rejects.toThrow(
      new RegExp(`pushed with sha256 ${v1.sha256} but the stored tarball is ${sha256(evil.tarball)}`),
    );
    expect((await store.getPointer()).kind).toBe('missing');
  });

  it('refuses to activate a tarball stored under a version it was not built for', async () => {
    const store = s3.bundleStore('misfiled');
    const v2 = await build('misfiled', 'v2', 'closed');
    await s3
      .client()
      .send(new PutObjectCommand({ Bucket: TEST_BUCKET, Key: store.versionKey('v3'), Body: v2.tarball }));
    await expect(activateVersion(store, 'v3')).rejects.toThrow(/stored as v3 says it is version v2/);
  });

  it('with a verify key, activates only signed versions', async () => {
    const store = s3.bundleStore('signed');
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    await publish(store, 'v1', 'open', { signKey: privateKey });
    await publish(store, 'v2', 'closed');
    await expect(activateVersion(store, 'v1', { verifyKey: publicKey })).resolves.toMatchObject({ unchanged: false });
    await expect(activateVersion(store, 'v2', { verifyKey: publicKey })).rejects.toThrow(
      /version v2 does not verify with the given key: it is not signed/,
    );
  });

  it('activating the active version changes nothing; rollback without a previous says so', async () => {
    const store = s3.bundleStore('noop');
    await publish(store, 'v1', 'open');
    await activateVersion(store, 'v1');
    await expect(activateVersion(store, 'v1')).resolves.toMatchObject({ unchanged: true });
    await expect(rollbackBundle(store)).rejects.toThrow('v1 is active and has no previous version to roll back to');
    await s3.client().send(new DeleteObjectCommand({ Bucket: TEST_BUCKET, Key: store.pointerKey() }));
    await expect(rollbackBundle(store)).rejects.toThrow(/no version of noop is active/);
  });

  it('lists versions oldest first with size and signature, ignoring other keys', async () => {
    const store = s3.bundleStore('listed');
    const { privateKey } = generateKeyPairSync('ed25519');
    await publish(store, 'v1', 'open');
    await new Promise((r) => setTimeout(r, 1100)); // s3rver keeps LastModified to the second
    await publish(store, 'v2', 'closed', { signKey: privateKey });
    await s3
      .client()
      .send(new PutObjectCommand({ Bucket: TEST_BUCKET, Key: `${store.root}history/0001.json`, Body: '{}' }));
    const list = await store.listVersions();
    expect(list.map((v) => [v.version, v.signed])).toEqual([
      ['v1', false],
      ['v2', true],
    ]);
    expect(list[0].size).toBeGreaterThan(100);
  });

  it('reports upload progress for a large bundle and stores it intact', async () => {
    const store = s3.bundleStore('large');
    // Random bytes do not compress: a ~3 MiB tarball.
    const blob = Buffer.from(Array.from({ length: 3 * 1024 * 1024 }, () => Math.floor(Math.random() * 256)));
    const files = policyFiles('open');
    files.set('data/blob.bin', blob);
    const built = await buildBundle(files, { name: 'large', version: 'v1' });
    const progress: number[] = [];
    await pushBundle(store, built.tarball, built.manifest, { onProgress: (sent) => progress.push(sent) });
    expect(progress.length).toBeGreaterThan(10);
    expect(progress.at(-1)).toBe(built.tarball.length);
    const back = await store.getVersion('v1', { maxBytes: 64 * 1024 * 1024 });
    expect(sha256(back.tarball)).toBe(built.sha256);
  });
});
