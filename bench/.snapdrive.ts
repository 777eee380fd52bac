import { fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GrpcH2Client, paced } from './clients/grpc-h2.js';
import { generateMeshBundle, writeBundle } from './generate-bundle.js';
import { distinctShapes, encode } from './requests.js';
const work = mkdtempSync(path.join(tmpdir(), 'snap-'));
const policies = path.join(work, 'bundle');
writeBundle(policies, generateMeshBundle({ services: 100, variant: 'a', withTimeRule: true }));
const proc = fork(
  'bench/servers/authz.mjs',
  [JSON.stringify({ policies, logDestination: path.join(work, 'authz.log') })],
  {
    execArgv: ['--import=/tmp/stalls/snap-preload.mjs', ...(process.env.FLAGS ?? '').split(' ').filter(Boolean)],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  },
);
const port = await new Promise<number>((r) => proc.on('message', (m: any) => m.type === 'ready' && r(m.port)));
const client = new GrpcH2Client(port, 1);
const frames = distinctShapes(500 * 8 + 100, 100, 0).map((s) => encode(s, 100));
const run = paced(client, frames, 500, 8);
await new Promise((r) => setTimeout(r, 6000));
proc.send({ type: 'snap', path: '/tmp/stalls/mid.heapsnapshot' });
await new Promise((r) => proc.on('message', (m: any) => m.type === 'snapped' && r(0)));
await run;
client.close();
proc.send({ type: 'exit' });
console.log('done', work);
