/**
 * `npm run dev`: the whole bundle loop on one machine. Starts an S3-compatible
 * store (s3rver) on loopback with its data in .dev-store/, publishes
 * policies/ as a version (named after its content, so a re-run reuses it),
 * activates it, and serves against the store. Another terminal can then push,
 * activate and roll back with the printed commands and watch decisions change.
 *
 * When `nats-server` is installed it also starts one (with JetStream, data in
 * .dev-store/nats/) and serves with --notify, so changes are pushed and
 * `authz fleet status` works; without it, the server polls and says so.
 *
 * s3rver is a devDependency: this file is for development only.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import S3rver from 's3rver';
import { buildBundle } from '../build/bundle-build.js';
import { activateVersion, pushBundle } from '../operator/bundle-publish.js';
import { BundleStore } from '../bundle/store/bundle-store.js';
import { directoryVersion, readPolicyDirectory } from '../bundle/format/policy-directory.js';
import { createS3Client } from '../bundle/store/s3-client.js';
import { loadConfig } from '../config/load-config.js';
import { DEFAULT_BUNDLE_PREFIX, DEFAULT_POLICIES_DIR } from '../config/schema.js';
import { startAuthzServer } from '../server/authz-server.js';

const DEV_DIR = process.env.AUTHZ_DEV_DIR ?? '.dev-store';
const S3_PORT = Number(process.env.AUTHZ_DEV_S3_PORT ?? 4568);
const NATS_PORT = Number(process.env.AUTHZ_DEV_NATS_PORT ?? 4222);
const NATS_BINARY = process.env.NATS_SERVER_BIN ?? 'nats-server';
const NATS_READY_TIMEOUT_MS = 10_000;
const BUCKET = 'authz-dev';
const BUNDLE = 'mesh';
/** s3rver's built-in account; the dev store accepts no other. */
const DEV_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

/** An embedded NATS with JetStream on loopback, or undefined (with the reason printed) when it cannot run. */
async function startNats(dataDir: string): Promise<{ url: string; proc: ChildProcess } | undefined> {
  if (spawnSync(NATS_BINARY, ['--version'], { stdio: 'ignore' }).status !== 0) {
    process.stdout.write(
      `${NATS_BINARY} not found: changes reach the dev server by polling every second (install nats-server to have them pushed)\n`,
    );
    return undefined;
  }
  mkdirSync(dataDir, { recursive: true });
  const proc = spawn(NATS_BINARY, ['-js', '-a', '127.0.0.1', '-p', String(NATS_PORT), '-sd', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ready = await new Promise<boolean>((resolve) => {
    let output = '';
    const timer = setTimeout(() => resolve(false), NATS_READY_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Server is ready')) {
        clearTimeout(timer);
        resolve(true);
      }
    };
    proc.stderr!.on('data', onData);
    proc.stdout!.on('data', onData);
    proc.once('exit', () => {
      clearTimeout(timer);
      process.stdout.write(
        `nats-server did not start (port ${NATS_PORT} in use? set AUTHZ_DEV_NATS_PORT):\n${output.trim().split('\n').slice(-3).join('\n')}\n`,
      );
      resolve(false);
    });
  });
  if (!ready) {
    proc.kill('SIGTERM');
    process.stdout.write('changes reach the dev server by polling every second\n');
    return undefined;
  }
  proc.removeAllListeners('exit');
  proc.stderr!.resume();
  proc.stdout!.resume();
  const url = `nats://127.0.0.1:${NATS_PORT}`;
  process.stdout.write(`embedded NATS (JetStream) at ${url}: changes are pushed to the server\n`);
  return { url, proc };
}

async function main(): Promise<void> {
  // The dev store only knows its own account, whatever the shell has for real AWS.
  Object.assign(process.env, DEV_CREDENTIALS);
  const dataDir = path.join(DEV_DIR, 's3');
  const stateDir = path.join(DEV_DIR, 'state');
  mkdirSync(dataDir, { recursive: true });
  const s3rver = new S3rver({
    address: '127.0.0.1',
    port: S3_PORT,
    silent: true,
    directory: dataDir,
    configureBuckets: [{ name: BUCKET }],
  });
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
    process.stdout.write(
      `published ${DEFAULT_POLICIES_DIR}/ as ${BUNDLE} ${version} (${built.report.passed} tests passed)\n`,
    );
  }
  const pointer = await store.getPointer();
  if (pointer.kind !== 'found') {
    await activateVersion(store, version);
    process.stdout.write(`activated ${version}\n`);
  } else {
    process.stdout.write(`keeping the active version ${pointer.pointer.version} (rm -rf ${DEV_DIR} to start over)\n`);
  }
  s3.destroy();
  const nats = await startNats(path.join(DEV_DIR, 'nats'));

  const env = process.env;
  const config = loadConfig({
    flags: {
      s3Endpoint: endpoint,
      bucket: BUCKET,
      bundle: BUNDLE,
      stateDir,
      // With push, polling is only the safety net.
      pollInterval: env.AUTHZ_POLL_INTERVAL ?? (nats ? '10s' : '1s'),
      notify: nats?.url,
      // Loopback unless the environment asks otherwise: this is a development store with a well-known key.
      listen: env.AUTHZ_LISTEN ?? '127.0.0.1:9191',
      admin: env.AUTHZ_ADMIN ?? '127.0.0.1:9192',
    },
  });
  const server = await startAuthzServer(config);
  const storeFlags = `AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AUTHZ_S3_ENDPOINT=${endpoint} AUTHZ_BUCKET=${BUCKET} AUTHZ_BUNDLE=${BUNDLE}${nats ? ` AUTHZ_NOTIFY=${nats.url}` : ''}`;
  process.stderr.write(
    [
      '',
      `dev store  ${endpoint} (bucket ${BUCKET}, data in ${dataDir}/)`,
      nats
        ? `push       ${nats.url} (JetStream; policy changes reach the server at once)`
        : 'push       none (polling every 1s)',
      `ext_authz  ${config.listen.host}:${server.grpcPort}   admin http://${config.admin.host}:${server.adminPort}/bundle`,
      '',
      'In another terminal:',
      `  export ${storeFlags}`,
      '  npx authz bundle list',
      '  npx authz bundle push policies --version v2     # after editing policies/',
      nats ? '  npx authz bundle activate v2 --wait' : '  npx authz bundle activate v2',
      ...(nats ? ['  npx authz fleet status'] : []),
      '  npx authz bundle rollback',
      `  curl -s http://${config.admin.host}:${server.adminPort}/bundle`,
      '',
    ].join('\n') + '\n',
  );
  const stop = (): void => {
    void server
      .close()
      .then(() => s3rver.close())
      .then(() => nats?.proc.kill('SIGTERM'))
      .then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: Error) => {
  process.stderr.write(`npm run dev: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
