/**
 * A policy swap under load: while a new version compiles, every request is
 * answered (by the old version), none fails, and once the new version is in,
 * no answer comes from the old one again.
 */
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateMeshBundle, serviceName, workloadId, writeBundle } from '../../bench/generate-bundle.js';
import { connectAuthz, type AuthzClient } from '../support/grpc-client.js';
import { eventually } from '../support/wait.js';
import { removeDir } from '../support/policy-dir.js';
import { istioRequest } from '../support/requests.js';
import { metricValue } from '../support/admin-http.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

const SERVICES = 20;
let server: TestServer;
let client: AuthzClient;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'authz-swap-'));
  writeBundle(dir, generateMeshBundle({ services: SERVICES, variant: 'a' }));
  server = await startTestServer({ policies: dir, logLevel: 'warn' });
  client = connectAuthz(server.grpcPort);
}, 60_000);

afterAll(async () => {
  client?.close();
  await server?.close();
  if (dir) removeDir(dir);
});

// Allowed by variant "b" only (a mesh caller: anonymous callers are refused by every service).
// Sent to svc-000's sidecar: its identity (destination principal) names the service.
const probe = () =>
  client.check(
    istioRequest({
      principal: workloadId(7, SERVICES),
      method: 'GET',
      path: '/probe/b',
      host: serviceName(0, SERVICES),
      destination: workloadId(0, SERVICES),
    }),
  );

describe('swapping a 200-policy set under load', () => {
  it('answers every request, from the old version until the switch and the new one after', async () => {
    const versionA = server.policySet.current!.version;
    expect((await probe()).status.code).toBe(7);

    const answers: { version: string; allowed: boolean; duringCompile: boolean }[] = [];
    const failures: unknown[] = [];
    let running = true;
    const worker = async () => {
      while (running) {
        const compiling = server.policySet.compiling !== null;
        try {
          const res = await probe();
          answers.push({
            version: res.dynamic_metadata!.fields!.policy_version.stringValue!,
            allowed: res.status.code === 0,
            duringCompile: compiling,
          });
        } catch (err) {
          failures.push(err);
        }
      }
    };
    const load = Promise.all([worker(), worker(), worker(), worker()]);

    // Only mesh.cedar differs between the variants; replaced by rename so the watcher never sees it half written.
    const next = path.join(dir, '.mesh.cedar.tmp');
    writeFileSync(next, generateMeshBundle({ services: SERVICES, variant: 'b' }).get('mesh.cedar')!);
    renameSync(next, path.join(dir, 'mesh.cedar'));
    try {
      await eventually(() => server.policySet.current!.version !== versionA, 20_000, 20);
      await eventually(() => answers.some((a) => a.version !== versionA), 5000, 10);
    } finally {
      // Stop the workers even when a wait fails, or they would keep calling a closed server forever.
      running = false;
      await load;
    }

    expect(failures).toEqual([]);
    const versionB = server.policySet.current!.version;
    expect(new Set(answers.map((a) => a.version))).toEqual(new Set([versionA, versionB]));
    const firstB = answers.findIndex((a) => a.version === versionB);
    expect(answers.slice(firstB).every((a) => a.version === versionB)).toBe(true);
    // Each version answered by its own policies.
    expect(answers.every((a) => a.allowed === (a.version === versionB))).toBe(true);
    // The compile gave the event loop back: requests were answered while it ran.
    expect(answers.filter((a) => a.duringCompile && a.version === versionA).length).toBeGreaterThan(0);
    const text = await server.metricsText();
    expect(metricValue(text, 'authz_bundle_activation_longest_step_seconds')).toBeGreaterThan(0);
  }, 60_000);
});
