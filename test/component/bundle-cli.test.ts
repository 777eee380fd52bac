/**
 * The bundle commands as a user runs them: real argument parsing, real
 * files, a real S3 protocol server; we read what they print and their exit
 * codes. (Commands run in this process: spawning a CLI per case costs
 * seconds each on a shared machine.)
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../support/cli.js';
import { startS3Server } from '../support/start-server.js';
import { TEST_BUCKET, TestS3Store } from '../support/s3rver-store.js';
import { activateVersion } from '../../src/operator/bundle-publish.js';
import { packBundle } from '../../src/bundle/format/bundle-archive.js';
import { MANIFEST_FILE, type BundleFileMap } from '../../src/bundle/format/bundle-files.js';
import { buildManifest, serialiseManifest, sha256 } from '../../src/bundle/format/manifest.js';
import type { RunningServer } from '../../src/server/authz-server.js';

const authz = (...argv: string[]): Promise<CliResult> => runCli(argv);

const POLICIES = path.resolve('policies');
let work: string;
let s3: TestS3Store;
let server: RunningServer | undefined;

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'authz-cli-'));
  s3 = await TestS3Store.start();
});
afterAll(async () => {
  await server?.close();
  await s3.close();
});

/** A copy of the example policies with one test expectation turned wrong. */
function brokenCopy(): string {
  const dir = path.join(work, `broken-${Math.random().toString(36).slice(2)}`);
  cpSync(POLICIES, dir, { recursive: true });
  const file = path.join(dir, 'tests', 'mesh.json');
  const cases = JSON.parse(readFileSync(file, 'utf8'));
  cases[0].decision = 'deny';
  writeFileSync(file, JSON.stringify(cases));
  return dir;
}

describe('authz bundle test / build', () => {
  it('bundle test prints a PASS line per case of the example policies and exits 0', async () => {
    const r = await authz('bundle', 'test', POLICIES);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('PASS  tests/mesh.json: '))).toHaveLength(15);
    expect(lines.at(-1)).toBe('PASS: 15/15');
  });

  it('bundle test exits 1 with a FAIL line and the reason when a case fails', async () => {
    const r = await authz('bundle', 'test', brokenCopy());
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /^FAIL {2}tests\/mesh\.json: the frontend reads an order \(.*\)\n {6}expected deny; got allow \(allowed, HTTP 200, policies: orders-frontend-access\)$/m,
    );
    expect(r.stdout).toMatch(/PASS: 14\/15\nFAIL: 1\/15\n$/);
  });

  it('bundle build refuses when a test fails and writes nothing', async () => {
    const out = path.join(work, 'refused.tar.gz');
    const r = await authz('bundle', 'build', brokenCopy(), '-o', out);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^REFUSED .*: 1 of 15 bundle tests failed; not building\n$/);
    expect(existsSync(out)).toBe(false);
  });

  it('bundle build refuses policies that do not validate against the schema', async () => {
    const dir = brokenCopy();
    writeFileSync(
      path.join(dir, 'typo.cedar'),
      '@id("typo") permit (principal, action, resource) when { context.pathh == "/" };',
    );
    const r = await authz('bundle', 'build', dir, '-o', path.join(work, 'typo.tar.gz'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^REFUSED .*: the policies do not validate: policies do not validate against schema\.cedarschema:\n.*\/typo\.cedar:1:\d+: for policy `typo`, /,
    );
  });

  it('bundle build writes a tarball that bundle test accepts as it is', async () => {
    const out = path.join(work, 'mesh.tar.gz');
    const r = await authz('bundle', 'build', POLICIES, '-o', out, '--name', 'mesh', '--version', 'v1');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /built .*mesh\.tar\.gz: bundle mesh version v1, \d+ files, [\d.]+ KiB, sha256 [0-9a-f]{64}\n$/,
    );
    const t = await authz('bundle', 'test', out);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/PASS: 15\/15/);
  });

  it('usage errors exit 2', async () => {
    expect((await authz('bundle', 'build', POLICIES)).code).toBe(2);
    expect((await authz('bundle', 'push', POLICIES)).stderr).toMatch(/needs --bucket and --bundle/);
  });
});

describe('authz bundle push / activate / rollback / list', () => {
  const store = (bundle = 'mesh') => ['--s3-endpoint', s3.endpoint, '--bucket', TEST_BUCKET, '--bundle', bundle];

  it('the whole loop, as the docs show it', async () => {
    const keyBase = path.join(work, 'signing');
    expect((await authz('bundle', 'keygen', keyBase)).code).toBe(0);
    expect((await authz('bundle', 'keygen', keyBase)).code).toBe(1); // never overwrites a key

    const p1 = await authz('bundle', 'push', POLICIES, '--version', 'v1', ...store());
    expect(p1.code).toBe(0);
    expect(p1.stdout).toMatch(
      /PASS: 15\/15\npushed mesh v1 \([\d.]+ KiB, sha256 [0-9a-f]{64}\) to s3:\/\/authz-test\/bundles\/mesh\/v1\/bundle\.tar\.gz\n/,
    );

    const again = await authz('bundle', 'push', POLICIES, '--version', 'v1', ...store());
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(
      /version v1 already exists at s3:\/\/authz-test\/bundles\/mesh\/v1\/bundle\.tar\.gz; versions are immutable/,
    );

    // A changed policy directory as v2, signed.
    const v2dir = path.join(work, 'v2');
    cpSync(POLICIES, v2dir, { recursive: true });
    const entities = readFileSync(path.join(POLICIES, 'entities.json'), 'utf8');
    const inMaintenance = entities.replace(
      '"tier": "edge", "maintenance": false',
      '"tier": "edge", "maintenance": true',
    );
    expect(inMaintenance).not.toBe(entities);
    writeFileSync(path.join(v2dir, 'entities.json'), inMaintenance);
    const p2 = await authz('bundle', 'push', v2dir, '--version', 'v2', '--sign-key', `${keyBase}.key`, ...store());
    expect(p2.code).toBe(0);
    expect(p2.stdout).toMatch(/pushed mesh v2 .*, signed with key [0-9a-f]{16}\)/);

    const a1 = await authz('bundle', 'activate', 'v1', ...store());
    expect(a1.code).toBe(0);
    expect(a1.stdout).toMatch(/^activated mesh v1 \(sha256 [0-9a-f]{64}; previous none\) at \S+Z\n/);
    expect((await authz('bundle', 'activate', 'v1', '--verify-key', `${keyBase}.pub`, ...store())).code).toBe(0); // already active: nothing to check or write

    server = await startS3Server(s3, 'mesh', { pollInterval: '200ms' });
    const ingress = 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account';
    const write = [
      '--server',
      `127.0.0.1:${server.grpcPort}`,
      '--method',
      'POST',
      '--path',
      '/checkout',
      '--host',
      'frontend',
      '--principal',
      ingress,
    ];
    const before = await authz('check', ...write);
    expect(before.code).toBe(0);
    expect(before.stdout).toMatch(/decision: {3}ALLOW \(allowed, HTTP 200\)\n(.*\n)+?version: {4}v1\n/);

    const a2 = await authz('bundle', 'activate', 'v2', '--verify-key', `${keyBase}.pub`, ...store());
    expect(a2.code).toBe(0);
    expect(a2.stdout).toMatch(/^activated mesh v2 .*previous v1\)/);
    let during;
    for (let i = 0; i < 60 && !during?.stdout.includes('v2'); i++) {
      await new Promise((r) => setTimeout(r, 50));
      during = await authz('check', ...write);
    }
    expect(during?.code).toBe(1);
    expect(during?.stdout).toMatch(
      /decision: {3}DENY \(policy_forbid, HTTP 503\)\nmessage: {4}this service is in maintenance; writes are paused, reads still work\npolicies: {3}maintenance-lockdown\nversion: {4}v2\n/,
    );

    const list = await authz('bundle', 'list', ...store());
    expect(list.code).toBe(0);
    const rows = list.stdout.split('\n');
    expect(rows[0]).toMatch(/^\s+VERSION\s+PUSHED\s+SIZE\s+SIGNED$/);
    expect(rows[1]).toMatch(/^\s+v1\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+[\d.]+ KiB\s+no$/);
    expect(rows[2]).toMatch(/^\*\s+v2\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+[\d.]+ KiB\s+yes$/);
    expect(rows.slice(3)).toEqual(['', `* active since ${a2.stdout.match(/ at (\S+)\n/)![1]}; previous v1`, '']);

    const rb = await authz('bundle', 'rollback', ...store());
    expect(rb.code).toBe(0);
    expect(rb.stdout).toMatch(/^rolled back from v2 to mesh v1 .*previous v2\)/);
  });

  it('activate refuses a version that is missing or unsigned when a key is given', async () => {
    const missing = await authz('bundle', 'activate', 'v9', ...store('other'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(
      /version v9 does not exist at s3:\/\/authz-test\/bundles\/other\/v9\/bundle\.tar\.gz; push it first/,
    );

    expect((await authz('bundle', 'push', POLICIES, '--version', 'v1', ...store('other'))).code).toBe(0);
    const keyBase = path.join(work, 'other-key');
    await authz('bundle', 'keygen', keyBase);
    const unsigned = await authz('bundle', 'activate', 'v1', '--verify-key', `${keyBase}.pub`, ...store('other'));
    expect(unsigned.code).toBe(1);
    expect(unsigned.stderr).toMatch(/version v1 does not verify with the given key: it is not signed/);
  });

  it('push refuses a built file whose version is not the one asked for', async () => {
    const out = path.join(work, 'named.tar.gz');
    await authz('bundle', 'build', POLICIES, '-o', out, '--name', 'named', '--version', 'v1');
    const r = await authz('bundle', 'push', out, '--version', 'v2', ...store('named'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/was built as version v1, not v2; rebuild it with --version v2/);
    // Pushed as built, it is accepted, and can be activated by the library as well.
    expect((await authz('bundle', 'push', out, ...store('named'))).code).toBe(0);
    await expect(activateVersion(s3.bundleStore('named'), 'v1')).resolves.toMatchObject({ unchanged: false });
  });

  /** A bundle that unpacks and matches its manifest but that no server would compile: a policy naming an entity type the schema lacks. */
  async function schemaInvalidBundle(bundle: string, version: string): Promise<{ tarball: Buffer; sha256: string }> {
    const files: BundleFileMap = new Map([
      [
        'schema.cedarschema',
        Buffer.from(
          'entity Workload;\nentity Service;\naction "GET" appliesTo { principal: [Workload], resource: [Service] };\n',
        ),
      ],
      ['main.cedar', Buffer.from('@id("typo")\npermit (principal == Workloda::"frontend", action, resource);\n')],
    ]);
    const manifest = buildManifest(files, { name: bundle, version, created: new Date(), cedarVersion: 'test' });
    files.set(MANIFEST_FILE, serialiseManifest(manifest));
    const tarball = await packBundle(files, new Date(), MANIFEST_FILE);
    return { tarball, sha256: sha256(tarball) };
  }

  it('activate of a schema-invalid version uploaded straight to the store fails without moving the pointer; --force moves it and says so in the audit trail', async () => {
    const bundleStore = s3.bundleStore('strict');
    expect((await authz('bundle', 'push', POLICIES, '--version', 'v1', ...store('strict'))).code).toBe(0);
    expect((await authz('bundle', 'activate', 'v1', '--reason', 'first', ...store('strict'))).code).toBe(0);
    const pointerBefore = await bundleStore.getPointer();
    expect(pointerBefore).toMatchObject({ kind: 'found', pointer: { version: 'v1' } });

    const bad = await schemaInvalidBundle('strict', 'v2');
    await bundleStore.putVersion('v2', bad.tarball, { sha256: bad.sha256 });
    const refused = await authz('bundle', 'activate', 'v2', ...store('strict'));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^authz bundle activate: version v2 would be refused by every server: .*Workloda/);
    expect(refused.stdout).toBe('');
    expect(await bundleStore.getPointer()).toEqual(pointerBefore);

    const history = async () =>
      JSON.parse((await authz('bundle', 'history', '--json', ...store('strict'))).stdout) as Record<string, unknown>[];
    expect(await history()).toHaveLength(1);

    const forced = await authz('bundle', 'activate', 'v2', '--force', '--reason', 'incident 42', ...store('strict'));
    expect(forced.code).toBe(0);
    expect(forced.stderr).toMatch(/--force: activated although version v2 would be refused by every server/);
    expect(await bundleStore.getPointer()).toMatchObject({
      kind: 'found',
      pointer: { version: 'v2', sha256: bad.sha256, previous: 'v1' },
    });
    const [latest] = await history();
    expect(latest).toMatchObject({
      action: 'activate',
      from: 'v1',
      to: 'v2',
      why: 'incident 42',
      details: { forced: true, forced_past: expect.stringMatching(/would be refused by every server/) },
    });

    const back = await authz('bundle', 'rollback', ...store('strict'));
    expect(back.code).toBe(0);
    expect(await bundleStore.getPointer()).toMatchObject({ kind: 'found', pointer: { version: 'v1' } });
    // Rollback checks the same way: with v2 now the previous version, rolling back to it is refused.
    const again = await authz('bundle', 'rollback', ...store('strict'));
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/version v2 would be refused by every server/);
    expect(await bundleStore.getPointer()).toMatchObject({ kind: 'found', pointer: { version: 'v1' } });
  });

  it('activate refuses a version whose tarball was built for another bundle', async () => {
    const out = path.join(work, 'staging.tar.gz');
    expect((await authz('bundle', 'build', POLICIES, '-o', out, '--name', 'staging', '--version', 'v1')).code).toBe(0);
    const tarball = readFileSync(out);
    await s3.bundleStore('prod').putVersion('v1', tarball, { sha256: sha256(tarball) });
    const r = await authz('bundle', 'activate', 'v1', ...store('prod'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the tarball stored as prod v1 was built as bundle "staging"; servers refuse it/);
  });

  it('bundle sign re-signs an unsigned version so that activate --verify-key accepts it', async () => {
    const keyBase = path.join(work, 'resign');
    expect((await authz('bundle', 'keygen', keyBase)).code).toBe(0);
    expect((await authz('bundle', 'push', POLICIES, '--version', 'v1', ...store('resign'))).code).toBe(0);
    const unsigned = await authz('bundle', 'activate', 'v1', '--verify-key', `${keyBase}.pub`, ...store('resign'));
    expect(unsigned.stderr).toMatch(/it is not signed/);
    const signed = await authz('bundle', 'sign', 'v1', '--sign-key', `${keyBase}.key`, ...store('resign'));
    expect(signed.code).toBe(0);
    expect(signed.stdout).toMatch(/^signed resign v1 \(sha256 [0-9a-f]{64}\) with key [0-9a-f]{16}\n$/);
    expect((await authz('bundle', 'activate', 'v1', '--verify-key', `${keyBase}.pub`, ...store('resign'))).code).toBe(
      0,
    );
  });
});
