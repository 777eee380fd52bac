/**
 * `npm run dev`: the whole bundle loop on one machine. Starts an S3-compatible
 * store (s3rver) on loopback with its data in .dev-store/, publishes
 * policies/ as a version (named after its content, so a re-run reuses it),
 * activates it, and serves against the store. Another terminal can then push,
 * activate and roll back with the printed commands and watch decisions change.
 *
 * s3rver is a devDependency: this file is for development only.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import S3rver from 's3rver';
import { buildBundle } from '../bundle/bundle-build.js';
import { activateVersion, pushBundle } from '../bundle/bundle-publish.js';
import { BundleStore } from '../bundle/bundle-store.js';
import { directoryVersion, readPolicyDirectory } from '../bundle/policy-directory.js';
import { createS3Client } from '../bundle/s3-client.js';
import { loadConfig } from '../config/load-config.js';
import { DEFAULT_BUNDLE_PREFIX, DEFAULT_POLICIES_DIR } from '../config/schema.js';
import { startAuthzServer } from '../server/authz-server.js';

const DEV_DIR = process.env.AUTHZ_DEV_DIR ?? '.dev-store';
const S3_PORT = Number(process.env.AUTHZ_DEV_S3_PORT ?? 4568);
const BUCKET = 'authz-dev';
const BUNDLE = 'mesh';
/** s3rver's built-in account; the dev store accepts no other. */
const DEV_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

async function main(): Promise<void> {
  // The dev store only knows its own account, whatever the shell has for real AWS.
  Object.assign(process.env, DEV_CREDENTIALS);
  const dataDir = path.join(DEV_DIR, 's3');
  const stateDir = path.join(DEV_DIR, 'state');
  mkdirSync(dataDir, { recursive: true });
  const s3rver = new S3rver({ address: '127.0.0.1', port: S3_PORT, silent: true, directory: dataDir, configureBuckets: [{ name: BUCKET }] });
  await s3rver.run();
  const endpoint = `http://127.0.0.1:${S3_PORT}`;

  const s3 = createS3Client({ endpoint });
  const store = new BundleStore(s3, { bucket: BUCKET, prefix: DEFAULT_BUNDLE_PREFIX, bundle: BUNDLE });
  const files = await readPolicyDirectory(DEFAULT_POLICIES_DIR);
  const version = directoryVersion(files);
  if (await store.versionExists(version)) {
    process.stdout.write(`${DEFAULT_POLICIES_DIR}/ is already in the store as ${version}\n`);
  } else {
    const built = await buildBundle(files, { name: BUNDLE, version });
    await pushBundle(store, built.tarball, built.manifest);
    process.stdout.write(`published ${DEFAULT_POLICIES_DIR}/ as ${BUNDLE} ${version} (${built.report.passed} tests passed)\n`);
  }
  const pointer = await store.getPointer();
  if (pointer.kind !== 'found') {
    await activateVersion(store, version);
    process.stdout.write(`activated ${version}\n`);
  } else {
    process.stdout.write(`keeping the active version ${pointer.pointer.version} (rm -rf ${DEV_DIR} to start over)\n`);
  }
  s3.destroy();

  const env = process.env;
  const config = loadConfig({
    flags: {
      s3Endpoint: endpoint,
      bucket: BUCKET,
      bundle: BUNDLE,
      stateDir,
      pollInterval: env.AUTHZ_POLL_INTERVAL ?? '1s',
      // Loopback unless the environment asks otherwise: this is a development store with a well-known key.
      listen: env.AUTHZ_LISTEN ?? '127.0.0.1:9191',
      admin: env.AUTHZ_ADMIN ?? '127.0.0.1:9192',
    },
  });
  const server = await startAuthzServer(config);
  const storeFlags = `AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AUTHZ_S3_ENDPOINT=${endpoint} AUTHZ_BUCKET=${BUCKET} AUTHZ_BUNDLE=${BUNDLE}`;
  process.stderr.write(
    [
      '',
      `dev store  ${endpoint} (bucket ${BUCKET}, data in ${dataDir}/)`,
      `ext_authz  ${config.listen.host}:${server.grpcPort}   admin http://${config.admin.host}:${server.adminPort}/bundle`,
      '',
      'In another terminal:',
      `  export ${storeFlags}`,
      '  npx authz bundle list',
      '  npx authz bundle push policies --version v2     # after editing policies/',
      '  npx authz bundle activate v2',
      '  npx authz bundle rollback',
      `  curl -s http://${config.admin.host}:${server.adminPort}/bundle`,
      '',
    ].join('\n') + '\n',
  );
  const stop = (): void => {
    void server
      .close()
      .then(() => s3rver.close())
      .then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: Error) => {
  process.stderr.write(`npm run dev: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
