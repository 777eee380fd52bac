/**
 * What an operator sees when `serve` starts: a taken port is one line naming
 * the listener; a directory that is not there says nothing is serving; the
 * start line a terminal gets says where it listens and what it serves.
 */
import path from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { startAuthzServer } from '../../src/server/authz-server.js';
import { ListenError } from '../../src/server/listen-error.js';
import { startLine } from '../../src/cli/serve-command.js';
import { createLogger } from '../../src/observability/logger.js';
import { runAuthz } from '../support/cli.js';
import { EXAMPLE_POLICIES } from '../support/policy-dir.js';
import { eventually } from '../support/wait.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ policies: EXAMPLE_POLICIES });
});
afterAll(async () => {
  await server.close();
});

describe('serve start-up', () => {
  it('a gRPC port in use is one line naming the listener and the address', async () => {
    const config = loadConfig({
      flags: {
        policies: EXAMPLE_POLICIES,
        listen: `127.0.0.1:${server.grpcPort}`,
        admin: '127.0.0.1:0',
        logLevel: 'silent',
      },
      env: {},
    });
    const attempt = startAuthzServer(config, { logger: createLogger({ level: 'silent' }) });
    await expect(attempt).rejects.toThrow(ListenError);
    await expect(attempt).rejects.toThrow(
      `cannot listen for gRPC on 127.0.0.1:${server.grpcPort}: address already in use (another process listens there)`,
    );
  });

  it('an admin port in use, through the command: one line, exit 2', async () => {
    const r = await runAuthz([
      'serve',
      '--policies',
      EXAMPLE_POLICIES,
      '--listen',
      '127.0.0.1:0',
      '--admin',
      `127.0.0.1:${server.adminPort}`,
      '--log-level',
      'silent',
    ]);
    expect(r).toMatchObject({
      code: 2,
      stderr: `authz serve: cannot listen for admin HTTP on 127.0.0.1:${server.adminPort}: address already in use (another process listens there)\n`,
    });
  });

  it('the start line names the source, the policies and both addresses', () => {
    const config = loadConfig({
      flags: { policies: EXAMPLE_POLICIES, listen: '127.0.0.1:0', admin: '127.0.0.1:0' },
      env: {},
    });
    const set = server.policySet.current!;
    expect(startLine(config, server)).toBe(
      `authz serving policies from ${EXAMPLE_POLICIES}/ (${set.policySet.policies.size} policies, version ${set.version}); ` +
        `gRPC ext_authz on 127.0.0.1:${server.grpcPort}, admin HTTP on 127.0.0.1:${server.adminPort} (/metrics, /readyz, /bundle)`,
    );
  });

  it('a missing policy directory is logged as "nothing is serving", not as a previous set serving', async () => {
    const missing = await startTestServer({ policies: path.join(tmpdir(), 'authz-no-such-policies') });
    try {
      const line = await eventually(() =>
        missing.logLines().find((l) => l.msg?.toString().startsWith('policy set refused')),
      );
      expect(line.msg).toBe(
        'policy set refused; no policy set is serving, so every check is denied 503 (no_policy_set) until one compiles',
      );
      expect(line.serving).toBeNull();
    } finally {
      await missing.close();
    }
  });
});
