/**
 * Bundle figures quoted in docs/bundles.md: `npx tsx bench/bundles.ts`.
 * Costs of building and opening the example bundle, of activating it, the
 * memory left per swap, and how long an activation takes to reach a server
 * polling every 2 s (real s3rver on loopback, real server, real client).
 * Run with `node --expose-gc --import tsx bench/bundles.ts` so the memory
 * figure is measured after a full GC rather than wherever GC happens to be.
 */
import { activateVersion } from '../src/operator/bundle-publish.js';
import { ActivePolicySet } from '../src/bundle/active-policy-set.js';
import { packBundle } from '../src/bundle/format/bundle-archive.js';
import { buildBundle } from '../src/build/bundle-build.js';
import { openBundle } from '../src/bundle/format/open-bundle.js';
import { filesToPolicySetSource } from '../src/bundle/format/bundle-files.js';
import { directoryVersion, readPolicyDirectory } from '../src/bundle/format/policy-directory.js';
import { connectAuthz } from '../test/support/grpc-client.js';
import { GET_X } from '../test/support/requests.js';
import { publish } from '../test/support/bundle-fixtures.js';
import { startS3Server } from '../test/support/start-server.js';
import { TestS3Store } from '../test/support/s3rver-store.js';

const avg = async (n: number, f: (i: number) => unknown): Promise<number> => {
  const t = performance.now();
  for (let i = 0; i < n; i++) await f(i);
  return (performance.now() - t) / n;
};

async function costs(): Promise<void> {
  const files = await readPolicyDirectory('policies');
  const built = await buildBundle(files, { name: 'mesh', version: 'v0' });
  const build = await avg(5, (i) => buildBundle(files, { name: 'mesh', version: `v${i}` }));
  const pack = await avg(50, () => packBundle(files, new Date()));
  const open = await avg(50, () => openBundle(built.tarball));
  console.log(
    `example bundle ${built.tarball.length} bytes: build (compile + ${built.report.passed} tests + pack) ${build.toFixed(1)} ms, pack ${pack.toFixed(2)} ms, open (gunzip + untar + manifest check) ${open.toFixed(2)} ms`,
  );

  const source = filesToPolicySetSource(files, directoryVersion(files));
  const set = new ActivePolicySet();
  set.activateSource(source);
  const gc = (globalThis as { gc?: () => void }).gc;
  const rss = () => (gc?.(), process.memoryUsage().rss);
  const before = rss();
  const SWAPS = 300;
  const activate = await avg(SWAPS, (i) => set.activateSource({ ...source, version: `v${i}` }));
  console.log(
    `activation (compile with schema validation + swap), ${SWAPS} swaps: ${activate.toFixed(1)} ms each; RSS +${((rss() - before) / 1024 / SWAPS).toFixed(1)} KiB per swap${gc ? '' : ' (without --expose-gc: GC noise)'}`,
  );
}

async function propagation(): Promise<void> {
  const s3 = await TestS3Store.start();
  const store = s3.bundleStore('prop');
  await publish(store, 'v1', 'open');
  await publish(store, 'v2', 'closed');
  await activateVersion(store, 'v1');
  const POLL_MS = 2000;
  const server = await startS3Server(s3, 'prop', { pollInterval: `${POLL_MS}ms` });
  const client = connectAuthz(server.grpcPort);
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const target = i % 2 === 0 ? 'v2' : 'v1';
    // Land at a random point of the poll cycle, as a real activation does.
    await new Promise((r) => setTimeout(r, Math.random() * POLL_MS));
    await activateVersion(store, target);
    const t0 = performance.now();
    while ((await client.answer(GET_X)).version !== target) await new Promise((r) => setTimeout(r, 10));
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  console.log(
    `propagation, poll ${POLL_MS} ms, ${times.length} activations: min ${times[0].toFixed(0)} ms, median ${times[times.length / 2].toFixed(0)} ms, ` +
      `max ${times.at(-1)!.toFixed(0)} ms (promise: within ${POLL_MS + 1000} ms)`,
  );
  client.close();
  await server.close();
  await s3.close();
}

await costs();
await propagation();
