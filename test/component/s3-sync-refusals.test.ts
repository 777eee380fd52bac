/**
 * What a running server does with bad news from the store: every broken or
 * tampered bundle is refused, counted in authz_bundle_loads_total{result="error"}
 * and shown at /bundle, while the last good version keeps answering and
 * readiness stays green. The pointers here are written straight to the
 * bucket, as a broken publisher or an attacker with write access would.
 */
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packBundle, unpackBundle } from '../../src/bundle/format/bundle-archive.js';
import { MANIFEST_FILE, type BundleFileMap } from '../../src/bundle/format/bundle-files.js';
import { activateVersion, pushBundle } from '../../src/operator/bundle-publish.js';
import type { BundleStore } from '../../src/bundle/store/bundle-store.js';
import { buildManifest, serialiseManifest, sha256 } from '../../src/bundle/format/manifest.js';
import { signBundle } from '../../src/bundle/format/signature.js';
import type { RunningServer } from '../../src/server/authz-server.js';
import { adminJson, scrapeMetric } from '../support/admin-http.js';
import type { AuthzClient } from '../support/grpc-client.js';
import { GET_X } from '../support/requests.js';
import { waitFor } from '../support/wait.js';
import { build, publish } from '../support/bundle-fixtures.js';
import { startS3Server, TEST_POLL_INTERVAL_MS, TestServers, type ServedServer } from '../support/start-server.js';
import { TEST_BUCKET, TestS3Store } from '../support/s3rver-store.js';

/**
 * A refusal is counted within a poll or two; the bound is generous because the
 * shared CI machine can be several processes per core. Waits end as soon as
 * the refusal is seen, so a healthy run never waits this long.
 */
const REFUSAL_WAIT_MS = 10_000;

let s3: TestS3Store;
const servers = new TestServers();

beforeAll(async () => {
  s3 = await TestS3Store.start();
});
afterAll(async () => {
  await servers.closeAll();
  await s3.close();
});

async function put(key: string, body: Buffer | string): Promise<void> {
  await s3.client().send(new PutObjectCommand({ Bucket: TEST_BUCKET, Key: key, Body: body }));
}

async function writePointer(store: BundleStore, pointer: Record<string, unknown> | string): Promise<void> {
  await put(store.pointerKey(), typeof pointer === 'string' ? pointer : JSON.stringify(pointer));
}

/** A tarball with a valid manifest around whatever files are given (skipping the builder's checks). */
async function handMadeBundle(name: string, version: string, files: BundleFileMap): Promise<Buffer> {
  const manifest = buildManifest(files, { name, version, created: new Date(), cedarVersion: 'test' });
  const all = new Map(files);
  all.set(MANIFEST_FILE, serialiseManifest(manifest));
  return packBundle(all, new Date(), MANIFEST_FILE);
}

function serve(bundle: string, flags: Record<string, unknown> = {}): Promise<ServedServer> {
  return servers.add(startS3Server(s3, bundle, flags));
}

const errorsOf = (server: RunningServer) => scrapeMetric(server.adminPort, 'authz_bundle_loads_total{result="error"}');

describe('refusals by a running server', () => {
  let store: BundleStore;
  let server: RunningServer;
  let client: AuthzClient;
  let v1Sha: string;

  beforeAll(async () => {
    store = s3.bundleStore('refuse');
    v1Sha = (await publish(store, 'v1', 'open')).sha256;
    await publish(store, 'v2', 'closed');
    await activateVersion(store, 'v1');
    ({ server, client } = await serve('refuse'));
  });

  /** `once`: also check it is refused once, not once per poll (the pointer's ETag is remembered); two code paths, checked once each. */
  const cases: { name: string; setup: () => Promise<void>; error: RegExp; once?: boolean }[] = [
    {
      name: 'a corrupt tarball',
      setup: async () => {
        const junk = Buffer.from('definitely not a gzip stream');
        await put(store.versionKey('v3'), junk);
        await writePointer(store, {
          version: 'v3',
          sha256: sha256(junk),
          activated_at: new Date().toISOString(),
          previous: 'v1',
        });
      },
      error: /bundle v3: the bundle is not a valid gzip file/,
      once: true,
    },
    {
      name: 'a pointer whose hash does not match the tarball',
      setup: () =>
        writePointer(store, {
          version: 'v2',
          sha256: 'f'.repeat(64),
          activated_at: new Date().toISOString(),
          previous: 'v1',
        }),
      error: /bundle v2: sha256 mismatch: the pointer says f{64}, the tarball is [0-9a-f]{64}/,
    },
    {
      name: 'a tarball whose files were changed after build (hash in the pointer fixed up)',
      setup: async () => {
        const files = await unpackBundle((await build('refuse', 'v4', 'open')).tarball);
        files.set('main.cedar', Buffer.from('@id("everything") permit (principal, action, resource);'));
        const tampered = await packBundle(files, new Date(), MANIFEST_FILE);
        await put(store.versionKey('v4'), tampered);
        await writePointer(store, {
          version: 'v4',
          sha256: sha256(tampered),
          activated_at: new Date().toISOString(),
          previous: 'v1',
        });
      },
      error: /bundle v4: the bundle's files do not match manifest\.json: main\.cedar does not match its sha256/,
    },
    {
      name: 'a bundle whose policies do not parse',
      setup: async () => {
        const broken = await handMadeBundle(
          'refuse',
          'v5',
          new Map([['main.cedar', Buffer.from('permit (principal, action resource);')]]),
        );
        await put(store.versionKey('v5'), broken);
        await writePointer(store, {
          version: 'v5',
          sha256: sha256(broken),
          activated_at: new Date().toISOString(),
          previous: 'v1',
        });
      },
      error: /Cedar parse error: main\.cedar:\d+:\d+: /,
    },
    {
      name: 'a tarball reaching outside the bundle',
      setup: async () => {
        const evil = await handMadeBundle(
          'refuse',
          'v6',
          new Map([['ok.cedar', Buffer.from('permit (principal, action, resource);')]]),
        );
        // Re-pack with a traversal entry added by hand (packBundle itself refuses such names).
        const pack = tar.pack();
        const chunks: Buffer[] = [];
        const done = (async () => {
          for await (const c of pack) chunks.push(c as Buffer);
        })();
        for (const [name, data] of await unpackBundle(evil)) pack.entry({ name, size: data.length }, data);
        pack.entry({ name: '../../etc/cron.d/evil', size: 1 }, Buffer.from('x'));
        pack.finalize();
        await done;
        const archive = zlib.gzipSync(Buffer.concat(chunks));
        await put(store.versionKey('v6'), archive);
        await writePointer(store, {
          version: 'v6',
          sha256: sha256(archive),
          activated_at: new Date().toISOString(),
          previous: 'v1',
        });
      },
      error: /bundle v6: unsafe path "\.\.\/\.\.\/etc\/cron\.d\/evil"/,
    },
    {
      name: 'a tarball built for another version',
      setup: async () => {
        const other = await build('refuse', 'v2', 'closed');
        await put(store.versionKey('v7'), other.tarball);
        await writePointer(store, {
          version: 'v7',
          sha256: other.sha256,
          activated_at: new Date().toISOString(),
          previous: 'v1',
        });
      },
      error: /bundle v7: its manifest says version v2/,
    },
    {
      name: 'a tarball built for another bundle (its manifest names "staging")',
      setup: async () => {
        const staging = await build('staging', 'v8', 'closed');
        await put(store.versionKey('v8'), staging.tarball);
        await writePointer(store, {
          version: 'v8',
          sha256: staging.sha256,
          activated_at: new Date().toISOString(),
          previous: 'v1',
        });
      },
      error: /bundle v8: its manifest says bundle "staging", but this server serves "refuse"/,
    },
    {
      name: 'a pointer naming a version that does not exist',
      setup: () =>
        writePointer(store, {
          version: 'v9',
          sha256: 'a'.repeat(64),
          activated_at: new Date().toISOString(),
          previous: 'v1',
        }),
      error: /bundle v9: download failed: version v9 does not exist/,
    },
    {
      name: 'a pointer that is not JSON',
      setup: () => writePointer(store, '{"version": "v2", '),
      error: /current\.json is not valid JSON/,
      once: true,
    },
    {
      name: 'a pointer missing its hash',
      setup: () => writePointer(store, { version: 'v2', activated_at: 'now', previous: null }),
      error: /current\.json: sha256: /,
    },
  ];

  for (const c of cases) {
    it(`refuses ${c.name}; v1 keeps serving, counted, readiness green`, async () => {
      const before = await errorsOf(server);
      await c.setup();
      const after = await waitFor(
        () => errorsOf(server),
        (n) => n > before,
        REFUSAL_WAIT_MS,
      );
      expect(after).toBe(before + 1);
      expect(await client.answer(GET_X)).toMatchObject({ allowed: true, version: 'v1' });
      const bundle = (await adminJson(server.adminPort, '/bundle')).body;
      expect(bundle.version).toBe('v1');
      expect(bundle.bundle).toMatchObject({ version: 'v1', sha256: v1Sha });
      expect(bundle.last_error.message).toMatch(c.error);
      expect((await adminJson(server.adminPort, '/readyz')).status).toBe(200);
      if (c.once) {
        await new Promise((r) => setTimeout(r, TEST_POLL_INTERVAL_MS * 3));
        expect(await errorsOf(server)).toBe(after);
      }
    });
  }

  it('a missing pointer (404) changes nothing: v1 keeps serving; a new pointer is picked up', async () => {
    await activateVersion(store, 'v1');
    await waitFor(
      async () => (await adminJson(server.adminPort, '/bundle')).body.pointer.pointer?.version,
      (v) => v === 'v1',
      REFUSAL_WAIT_MS,
    );
    await s3.client().send(new DeleteObjectCommand({ Bucket: TEST_BUCKET, Key: store.pointerKey() }));
    const status = await waitFor(
      async () => (await adminJson(server.adminPort, '/bundle')).body.pointer.status,
      (s) => s === 'missing',
      REFUSAL_WAIT_MS,
    );
    expect(status).toBe('missing');
    expect(await client.answer(GET_X)).toMatchObject({ allowed: true, version: 'v1' });
    expect((await adminJson(server.adminPort, '/readyz')).status).toBe(200);

    await activateVersion(store, 'v2');
    const v2 = await waitFor(
      () => client.answer(GET_X),
      (a) => a.version === 'v2',
      REFUSAL_WAIT_MS,
    );
    expect(v2).toMatchObject({ allowed: false, version: 'v2' });
  });
});

describe('signature verification (--verify-key)', () => {
  it('serves signed bundles and refuses unsigned, wrongly signed, old-format and misbound ones', async () => {
    const store = s3.bundleStore('signed');
    const staging = s3.bundleStore('staging');
    const keys = generateKeyPairSync('ed25519');
    const stranger = generateKeyPairSync('ed25519');
    const dir = mkdtempSync(path.join(tmpdir(), 'authz-keys-'));
    const pub = path.join(dir, 'bundles.pub');
    writeFileSync(pub, keys.publicKey.export({ type: 'spki', format: 'pem' }));

    const v1 = await publish(store, 'v1', 'open', { signKey: keys.privateKey });
    const v2 = await publish(store, 'v2', 'closed');
    const v3 = await build('signed', 'v3', 'closed');
    await pushBundle(store, v3.tarball, v3.manifest, { signKey: stranger.privateKey });
    const v4 = await build('signed', 'v4', 'closed');
    await pushBundle(store, v4.tarball, v4.manifest);
    // The right key, but a signature over another tarball (v1's), copied next to v4.
    await put(
      store.signatureKey('v4'),
      signBundle(keys.privateKey, { bundle: 'signed', version: 'v1', sha256: v1.sha256 }),
    );
    // An old-format signature (base64 over the hash alone), by the right key, over the right tarball.
    const v5 = await build('signed', 'v5', 'closed');
    await pushBundle(store, v5.tarball, v5.manifest);
    await put(
      store.signatureKey('v5'),
      Buffer.from(sign(null, Buffer.from(v5.sha256, 'ascii'), keys.privateKey).toString('base64') + '\n'),
    );
    // The attack of issue 21: a staging bundle signed with the same key, copied with its signature into signed/v8.
    const stagingV8 = await publish(staging, 'v8', 'closed', { signKey: keys.privateKey });
    await put(store.versionKey('v8'), stagingV8.tarball);
    await put(store.signatureKey('v8'), (await staging.getSignature('v8'))!);
    // A version signed by the right key for this bundle, copied under another version name (v1's tarball and signature as v9).
    await put(store.versionKey('v9'), v1.tarball);
    await put(store.signatureKey('v9'), (await store.getSignature('v1'))!);
    await activateVersion(store, 'v1');

    const { server, client } = await serve('signed', { verifyKey: pub });
    expect(await client.answer(GET_X)).toMatchObject({ allowed: true, version: 'v1' });

    const rows: { version: string; sha256: string; error: RegExp }[] = [
      {
        version: 'v2',
        sha256: v2.sha256,
        error: /bundle v2: refused by --verify-key: no signature at s3:\/\/.*\/signed\/v2\/bundle\.tar\.gz\.sig/,
      },
      {
        version: 'v3',
        sha256: v3.sha256,
        error:
          /bundle v3: refused by --verify-key: the signature is by key [0-9a-f]{16}, which is not among the verify keys \([0-9a-f]{16}\)/,
      },
      {
        version: 'v4',
        sha256: v4.sha256,
        error: /bundle v4: refused by --verify-key: the signature is for version v1, not v4/,
      },
      {
        version: 'v5',
        sha256: v5.sha256,
        error: /bundle v5: refused by --verify-key: the signature is in the old format .*authz bundle sign/,
      },
      {
        version: 'v8',
        sha256: stagingV8.sha256,
        error: /bundle v8: refused by --verify-key: the signature is for bundle "staging", not "signed"/,
      },
      {
        version: 'v9',
        sha256: v1.sha256,
        error: /bundle v9: refused by --verify-key: the signature is for version v1, not v9/,
      },
    ];
    for (const row of rows) {
      const before = await errorsOf(server);
      // Written straight to the store, as a publisher who forgot to sign, or an attacker with write access, would.
      await writePointer(store, {
        version: row.version,
        sha256: row.sha256,
        activated_at: new Date().toISOString(),
        previous: 'v1',
      });
      expect(
        await waitFor(
          () => errorsOf(server),
          (n) => n > before,
          REFUSAL_WAIT_MS,
        ),
      ).toBe(before + 1);
      expect((await adminJson(server.adminPort, '/bundle')).body.last_error.message).toMatch(row.error);
      // The last good version keeps answering: GET /x stays allowed (every refused version denies it).
      expect(await client.answer(GET_X)).toMatchObject({ allowed: true, version: 'v1' });
    }
  });

  it('a verify key file holding two keys stops start-up; two files are a rotation and both are accepted', async () => {
    const store = s3.bundleStore('rotated');
    const oldKey = generateKeyPairSync('ed25519');
    const newKey = generateKeyPairSync('ed25519');
    const dir = mkdtempSync(path.join(tmpdir(), 'authz-keys-'));
    const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();
    const both = path.join(dir, 'both.pub');
    writeFileSync(both, pem(oldKey.publicKey) + pem(newKey.publicKey));
    await expect(startS3Server(s3, 'rotated', { verifyKey: both })).rejects.toThrow(
      /verifyKey: .*both\.pub holds 2 PEM blocks; a key file must hold exactly one key/,
    );

    const oldPub = path.join(dir, 'old.pub');
    const newPub = path.join(dir, 'new.pub');
    writeFileSync(oldPub, pem(oldKey.publicKey));
    writeFileSync(newPub, pem(newKey.publicKey));
    await publish(store, 'v1', 'closed', { signKey: oldKey.privateKey });
    await publish(store, 'v2', 'open', { signKey: newKey.privateKey });
    await activateVersion(store, 'v1');
    const { client } = await serve('rotated', { verifyKey: [oldPub, newPub] });
    expect(await client.answer(GET_X)).toMatchObject({ allowed: false, version: 'v1' });
    await activateVersion(store, 'v2');
    expect(
      await waitFor(
        () => client.answer(GET_X),
        (a) => a.version === 'v2',
        REFUSAL_WAIT_MS,
      ),
    ).toMatchObject({ allowed: true, version: 'v2' });
  });

  it('--signed-not-before refuses versions signed before the floor (rollback protection)', async () => {
    const store = s3.bundleStore('floor');
    const keys = generateKeyPairSync('ed25519');
    const dir = mkdtempSync(path.join(tmpdir(), 'authz-keys-'));
    const pub = path.join(dir, 'k.pub');
    writeFileSync(pub, keys.publicKey.export({ type: 'spki', format: 'pem' }));
    const old = await build('floor', 'v1', 'closed');
    await store.putVersion('v1', old.tarball, {
      sha256: old.sha256,
      signature: signBundle(
        keys.privateKey,
        { bundle: 'floor', version: 'v1', sha256: old.sha256 },
        new Date('2026-01-01T00:00:00Z'),
      ),
    });
    await publish(store, 'v2', 'open', { signKey: keys.privateKey });
    await activateVersion(store, 'v2');
    const { server, client } = await serve('floor', { verifyKey: pub, signedNotBefore: '2026-06-01T00:00:00Z' });
    expect(await client.answer(GET_X)).toMatchObject({ allowed: true, version: 'v2' });
    const before = await errorsOf(server);
    // Replaying the old pointer to v1: validly signed, but before the floor.
    await writePointer(store, {
      version: 'v1',
      sha256: old.sha256,
      activated_at: '2026-01-01T00:00:00Z',
      previous: null,
    });
    expect(
      await waitFor(
        () => errorsOf(server),
        (n) => n > before,
        REFUSAL_WAIT_MS,
      ),
    ).toBe(before + 1);
    expect((await adminJson(server.adminPort, '/bundle')).body.last_error.message).toMatch(
      /bundle v1: refused by --verify-key: the signature was made at 2026-01-01T00:00:00\.000Z, before the --signed-not-before floor 2026-06-01T00:00:00\.000Z/,
    );
    expect(await client.answer(GET_X)).toMatchObject({ allowed: true, version: 'v2' });
  });

  it('a verify key that is not a public key stops start-up with a message naming the field', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'authz-keys-'));
    const bad = path.join(dir, 'private.pem');
    writeFileSync(bad, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await expect(startS3Server(s3, 'signed', { verifyKey: bad })).rejects.toThrow(
      /verifyKey: .*private\.pem holds a private key/,
    );
  });
});
