/**
 * `authz check --server` against a real server over TLS and mTLS: it prints
 * the reason code, the policies and the server's whole answer, and a refused
 * connection is one line, exit 2.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAuthz } from '../support/cli.js';
import { makePki, type Pki } from '../support/pki.js';
import { EXAMPLE_POLICIES, removeDir } from '../support/policy-dir.js';
import { FRONTEND } from '../support/requests.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

let pki: Pki;
let mtls: TestServer;
let plain: TestServer;
beforeAll(async () => {
  pki = await makePki();
  mtls = await startTestServer({
    policies: EXAMPLE_POLICIES,
    tlsCert: pki.serverCert,
    tlsKey: pki.serverKey,
    tlsClientCa: pki.caCert,
  });
  plain = await startTestServer({ policies: EXAMPLE_POLICIES });
});
afterAll(async () => {
  await mtls.close();
  await plain.close();
  removeDir(pki.dir);
});

const orders = ['--method', 'GET', '--path', '/orders/1', '--host', 'orders', '--principal', FRONTEND];

describe('check --server', () => {
  it('over mTLS: the decision with its reason code and policies', async () => {
    const r = await runAuthz([
      'check',
      '--server',
      `localhost:${mtls.grpcPort}`,
      '--tls-ca',
      pki.caCert,
      '--tls-cert',
      pki.clientCert,
      '--tls-key',
      pki.clientKey,
      ...orders,
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(
        `^decision: {3}ALLOW \\(allowed, HTTP 200\\)\\nmessage: {4}allowed\\npolicies: {3}orders-frontend-access\\nversion: {4}dir-[0-9a-f]{12}\\ndecision id: [0-9a-f-]{36}\\nserver: {5}localhost:${mtls.grpcPort} \\(mTLS\\)\\nenvoy response:\\n\\{`,
      ),
    );
  });

  it('a deny names its reason and status as the local check does', async () => {
    const r = await runAuthz([
      'check',
      '--server',
      `127.0.0.1:${plain.grpcPort}`,
      '--method',
      'DELETE',
      '--path',
      '/payments/9',
      '--host',
      'payments',
      '--principal',
      FRONTEND,
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /^decision: {3}DENY \(policy_forbid, HTTP 405\)\nmessage: {4}payments cannot be deleted; issue a refund instead\npolicies: {3}payments-no-delete\n/,
    );
  });

  it('without a client certificate the mTLS server refuses: one line, exit 2', async () => {
    const r = await runAuthz(['check', '--server', `localhost:${mtls.grpcPort}`, '--tls-ca', pki.caCert, ...orders]);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(r.stderr).toBe(
      `authz check: localhost:${mtls.grpcPort}: the server requires a client certificate (give --tls-cert and --tls-key)\n`,
    );
  });

  it.each([
    {
      name: 'a certificate without its key',
      argv: ['--tls-cert', 'c.pem'],
      stderr: 'authz check: --tls-cert and --tls-key go together (the client certificate for mTLS)\n',
    },
    {
      name: 'a CA file that is not there',
      argv: ['--tls-ca', '/nonexistent/ca.pem'],
      stderr: 'authz check: --tls-ca /nonexistent/ca.pem: no such file\n',
    },
  ])('refuses $name', async ({ argv, stderr }) => {
    const r = await runAuthz(['check', '--server', '127.0.0.1:1', ...argv, ...orders]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(stderr.replace('\n', '\nRun "authz check --help" for its options.\n'));
  });

  it('TLS flags without --server are refused', async () => {
    const r = await runAuthz(['check', '--tls-ca', 'ca.pem', ...orders]);
    expect(r).toMatchObject({
      code: 2,
      stderr: 'authz check: --tls-ca only applies with --server\nRun "authz check --help" for its options.\n',
    });
  });
});
