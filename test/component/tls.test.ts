import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { startAuthzServer } from '../../src/server/authz-server.js';
import { connectAuthz } from '../support/grpc-client.js';
import { copyExamplePolicies, removeDir } from '../support/policy-dir.js';
import { FRONTEND, istioRequest } from '../support/requests.js';
import { metricValue } from '../support/admin-http.js';
import { startTestServer, type TestServer } from '../support/start-server.js';
import { makePki, type Pki } from '../support/pki.js';
import { TRANSPORTS } from '../../src/config/transport-schema.js';

const read = (f: string) => readFileSync(f);
const INGRESS = 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account';
const request = istioRequest({ principal: FRONTEND, path: '/orders/1', ext: { service: 'orders' } });
// The certificates name localhost and 127.0.0.1; the client connects to 127.0.0.1.
const clientOptions: grpc.ClientOptions = { 'grpc.ssl_target_name_override': 'localhost' };

let pki: Pki;
let policies: string;

beforeAll(async () => {
  pki = await makePki();
  policies = copyExamplePolicies();
});
afterAll(() => {
  removeDir(pki.dir);
  removeDir(policies);
});

describe.each(TRANSPORTS)('over the %s transport', (transport) => {
  describe('TLS on the gRPC listener', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer({ transport, policies, tlsCert: pki.serverCert, tlsKey: pki.serverKey });
    });
    afterAll(async () => server?.close());

    it('a client that trusts the CA gets decisions', async () => {
      const c = connectAuthz(server.grpcPort, grpc.credentials.createSsl(read(pki.caCert)), clientOptions);
      try {
        expect((await c.check(request)).status.code).toBe(0);
      } finally {
        c.close();
      }
    });

    it('a plaintext client cannot talk to a TLS listener', async () => {
      const c = connectAuthz(server.grpcPort);
      try {
        await expect(c.check(request, 2000)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      } finally {
        c.close();
      }
    });
  });

  describe('mTLS on the gRPC listener', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer({
        transport,
        policies,
        tlsCert: pki.serverCert,
        tlsKey: pki.serverKey,
        tlsClientCa: pki.caCert,
      });
    });
    afterAll(async () => server?.close());

    it('a client with a certificate from the client CA gets decisions', async () => {
      const c = connectAuthz(
        server.grpcPort,
        grpc.credentials.createSsl(read(pki.caCert), read(pki.clientKey), read(pki.clientCert)),
        clientOptions,
      );
      try {
        expect((await c.check(request)).status.code).toBe(0);
      } finally {
        c.close();
      }
    });

    it('a client without a certificate is refused', async () => {
      const c = connectAuthz(server.grpcPort, grpc.credentials.createSsl(read(pki.caCert)), clientOptions);
      try {
        await expect(c.check(request, 2000)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      } finally {
        c.close();
      }
    });

    it('a client with a certificate from another CA is refused', async () => {
      const c = connectAuthz(
        server.grpcPort,
        grpc.credentials.createSsl(read(pki.caCert), read(pki.strangerKey), read(pki.strangerCert)),
        clientOptions,
      );
      try {
        await expect(c.check(request, 2000)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      } finally {
        c.close();
      }
    });
  });

  describe('--allowed-callers over real mTLS', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer({
        transport,
        policies,
        tlsCert: pki.serverCert,
        tlsKey: pki.serverKey,
        tlsClientCa: pki.caCert,
        // The ingress gateway by exact id, and anything in a namespace the frontend is not in.
        allowedCallers: [INGRESS, 'spiffe://cluster.local/ns/payments/*'],
      });
    });
    afterAll(async () => server?.close());

    const client = (key: string, cert: string) =>
      connectAuthz(server.grpcPort, grpc.credentials.createSsl(read(pki.caCert), read(key), read(cert)), clientOptions);

    it('a listed caller gets decisions', async () => {
      const c = client(pki.ingressKey, pki.ingressCert);
      try {
        expect((await c.check(request)).status.code).toBe(0);
      } finally {
        c.close();
      }
    });

    it('an unlisted caller with a valid certificate from the client CA gets UNAUTHENTICATED, counted and logged, and no decision', async () => {
      const decisionsBefore = server.logLines().filter((l) => l.msg === 'decision').length;
      const c = client(pki.frontendKey, pki.frontendCert);
      try {
        await expect(c.check(request)).rejects.toMatchObject({
          code: grpc.status.UNAUTHENTICATED,
          details: 'this caller may not ask for authorization decisions',
        });
        await expect(c.check(request)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      } finally {
        c.close();
      }
      expect(metricValue(await server.metricsText(), 'authz_callers_refused_total{reason="not_allowed"}')).toBe(2);
      const refusals = server
        .logLines()
        .filter((l) => typeof l.msg === 'string' && (l.msg as string).startsWith('Check call refused'));
      // Logged once per identity, not once per call.
      expect(refusals).toEqual([expect.objectContaining({ level: 'warn', caller: FRONTEND })]);
      expect(server.logLines().filter((l) => l.msg === 'decision')).toHaveLength(decisionsBefore);
    });

    it('a caller whose certificate carries no SPIFFE id gets UNAUTHENTICATED', async () => {
      const c = client(pki.clientKey, pki.clientCert);
      try {
        await expect(c.check(request)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      } finally {
        c.close();
      }
      expect(metricValue(await server.metricsText(), 'authz_callers_refused_total{reason="no_identity"}')).toBe(1);
    });

    it('/safety shows the allow-list in force', async () => {
      expect(JSON.parse((await server.admin('/safety')).body).allowed_callers).toEqual([
        INGRESS,
        'spiffe://cluster.local/ns/payments/*',
      ]);
    });
  });
});

describe('TLS configuration errors stop start-up', () => {
  const rows = [
    {
      name: 'certificate without key',
      flags: { tlsCert: 'x.pem' },
      error: /tlsKey: tlsCert and tlsKey must be given together/,
    },
    {
      name: 'client CA without certificate',
      flags: { tlsClientCa: 'ca.pem' },
      error: /tlsClientCa: mTLS needs a server certificate/,
    },
  ];
  for (const row of rows)
    it(row.name, () => expect(() => loadConfig({ flags: row.flags, env: {} })).toThrow(row.error));

  it('an unreadable certificate file names the field', async () => {
    const config = loadConfig({
      flags: {
        policies,
        listen: '127.0.0.1:0',
        admin: '127.0.0.1:0',
        tlsCert: '/nonexistent/cert.pem',
        tlsKey: pki.serverKey,
      },
      env: {},
    });
    await expect(startAuthzServer(config)).rejects.toThrow(/tlsCert: cannot read \/nonexistent\/cert\.pem: ENOENT/);
  });
});
