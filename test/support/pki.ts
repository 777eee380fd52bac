/** A throwaway PKI on disk: a CA, server and client leaves it signed, and a stranger from another CA. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import selfsigned from 'selfsigned';

export interface Pki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  otherCaCert: string;
  strangerCert: string;
  strangerKey: string;
  /** Client certificates from the client CA whose URI SAN is a SPIFFE id. */
  ingressCert: string;
  ingressKey: string;
  frontendCert: string;
  frontendKey: string;
}

export const PKI_INGRESS = 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account';
export const PKI_FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';

export async function makePki(): Promise<Pki> {
  const dir = mkdtempSync(path.join(tmpdir(), 'authz-pki-'));
  const caExt = [
    { name: 'basicConstraints' as const, cA: true, critical: true },
    { name: 'keyUsage' as const, keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
  ];
  const ca = await selfsigned.generate([{ name: 'commonName', value: 'test-ca' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: caExt,
  });
  const otherCa = await selfsigned.generate([{ name: 'commonName', value: 'other-ca' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: caExt,
  });
  const leaf = (
    cn: string,
    issuer: { private: string; cert: string },
    usage: 'serverAuth' | 'clientAuth',
    spiffe?: string,
  ) =>
    selfsigned.generate([{ name: 'commonName', value: cn }], {
      keyType: 'ec',
      algorithm: 'sha256',
      ca: { key: issuer.private, cert: issuer.cert },
      extensions: [
        { name: 'basicConstraints' as const, cA: false },
        { name: 'keyUsage' as const, digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage' as const, [usage]: true },
        {
          name: 'subjectAltName' as const,
          altNames: spiffe
            ? [{ type: 6, value: spiffe }]
            : [
                { type: 2, value: 'localhost' },
                { type: 7, ip: '127.0.0.1' },
              ],
        },
      ],
    });
  const server = await leaf('authz.test', ca, 'serverAuth');
  const client = await leaf('envoy.test', ca, 'clientAuth');
  const stranger = await leaf('stranger.test', otherCa, 'clientAuth');
  const ingress = await leaf('ingress', ca, 'clientAuth', PKI_INGRESS);
  const frontend = await leaf('frontend', ca, 'clientAuth', PKI_FRONTEND);
  const files: Record<string, string> = {
    caCert: ca.cert,
    serverCert: server.cert,
    serverKey: server.private,
    clientCert: client.cert,
    clientKey: client.private,
    otherCaCert: otherCa.cert,
    strangerCert: stranger.cert,
    strangerKey: stranger.private,
    ingressCert: ingress.cert,
    ingressKey: ingress.private,
    frontendCert: frontend.cert,
    frontendKey: frontend.private,
  };
  const out: Record<string, string> = { dir };
  for (const [k, v] of Object.entries(files)) {
    const f = path.join(dir, `${k}.pem`);
    writeFileSync(f, v);
    out[k] = f;
  }
  return out as unknown as Pki;
}
