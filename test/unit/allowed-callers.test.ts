import type { PeerCertificate } from 'node:tls';
import { describe, expect, it } from 'vitest';
import {
  callerGate,
  callerPatternProblem,
  CallerAllowList,
  checkCaller,
  isSpiffeId,
  spiffeIdOfCertificate,
  subjectAltNames,
} from '../../src/identity/allowed-callers.js';
import { loadConfig } from '../../src/config/load-config.js';

describe('SPIFFE ids are parsed strictly', () => {
  const rows: { id: string; ok: boolean }[] = [
    { id: 'spiffe://cluster.local/ns/shop/sa/frontend', ok: true },
    { id: 'spiffe://cluster.local', ok: true },
    { id: 'spiffe://Cluster.local/ns/shop', ok: false }, // trust domains are lower case
    { id: 'spiffe://cluster.local/ns//shop', ok: false },
    { id: 'spiffe://cluster.local/ns/shop/', ok: false },
    { id: 'spiffe://cluster.local/ns/../admin', ok: false },
    { id: 'spiffe://cluster.local/ns/shop?x=1', ok: false },
    { id: 'spiffe://user@cluster.local/ns', ok: false },
    { id: 'spiffe://cluster.local:8080/ns', ok: false },
    { id: 'https://cluster.local/ns/shop', ok: false },
    { id: `spiffe://td/${'a'.repeat(2048)}`, ok: false },
  ];
  for (const row of rows) it(`${row.id.slice(0, 60)} → ${row.ok}`, () => expect(isSpiffeId(row.id)).toBe(row.ok));
});

describe('allowed-callers patterns', () => {
  const rows: { pattern: string; problem?: RegExp }[] = [
    { pattern: 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account' },
    { pattern: 'spiffe://cluster.local/ns/shop/*' },
    { pattern: 'spiffe://cluster.local/ns/shop/sa/envoy-*' },
    { pattern: 'spiffe://cluster.local/*' },
    {
      pattern: 'spiffe://cluster.local*',
      problem: /a prefix must be a SPIFFE id up to a single trailing "\*" after the trust domain/,
    },
    { pattern: 'spiffe://*', problem: /a prefix must/ },
    { pattern: 'spiffe://td/ns/*/sa/x', problem: /is not a SPIFFE id/ },
    { pattern: 'spiffe://td/a*/*', problem: /a prefix must/ },
    { pattern: 'frontend', problem: /"frontend" is not a SPIFFE id/ },
  ];
  for (const row of rows) {
    it(row.pattern, () => {
      const problem = callerPatternProblem(row.pattern);
      if (row.problem) expect(problem).toMatch(row.problem);
      else expect(problem).toBeUndefined();
    });
  }

  it('matches exact ids and prefixes, and nothing else', () => {
    const list = new CallerAllowList([
      'spiffe://cluster.local/ns/istio-system/sa/ingress',
      'spiffe://cluster.local/ns/shop/*',
    ]);
    expect(list.allows('spiffe://cluster.local/ns/istio-system/sa/ingress')).toBe(true);
    expect(list.allows('spiffe://cluster.local/ns/istio-system/sa/ingress2')).toBe(false);
    expect(list.allows('spiffe://cluster.local/ns/shop/sa/frontend')).toBe(true);
    expect(list.allows('spiffe://cluster.local/ns/shopping/sa/x')).toBe(false);
    expect(list.allows('spiffe://evil.local/ns/shop/sa/frontend')).toBe(false);
  });
});

describe('the caller identity of a client certificate', () => {
  it('parses Node subjectaltname strings, quoted values included', () => {
    expect(subjectAltNames('DNS:localhost, IP Address:127.0.0.1, URI:spiffe://td/a')).toEqual([
      ['DNS', 'localhost'],
      ['IP Address', '127.0.0.1'],
      ['URI', 'spiffe://td/a'],
    ]);
    // Node quotes a value holding ", " so it cannot pose as a second entry.
    expect(subjectAltNames('DNS:"a, URI:spiffe://td/admin", URI:spiffe://td/b')).toEqual([
      ['DNS', 'a, URI:spiffe://td/admin'],
      ['URI', 'spiffe://td/b'],
    ]);
  });

  const rows: { san?: string; id?: string }[] = [
    { san: 'URI:spiffe://cluster.local/ns/shop/sa/frontend', id: 'spiffe://cluster.local/ns/shop/sa/frontend' },
    {
      san: 'DNS:envoy, URI:spiffe://cluster.local/ns/shop/sa/frontend',
      id: 'spiffe://cluster.local/ns/shop/sa/frontend',
    },
    { san: 'URI:spiffe://td/a, URI:spiffe://td/b' }, // an SVID has exactly one URI SAN
    { san: 'DNS:envoy' },
    { san: 'URI:https://td/a' },
    { san: 'URI:"spiffe://td/a,b"' },
    {},
  ];
  for (const row of rows) {
    it(`${row.san ?? '(no SAN)'} → ${row.id ?? 'no identity'}`, () =>
      expect(spiffeIdOfCertificate({ subjectaltname: row.san as string })).toBe(row.id));
  }

  it('turns away callers without a certificate, without an identity, or not listed', () => {
    const list = new CallerAllowList(['spiffe://td/ns/a/*']);
    expect(checkCaller(list, undefined)).toMatchObject({ ok: false, message: 'no verified client certificate' });
    expect(checkCaller(list, { subjectaltname: 'DNS:x' })).toMatchObject({ ok: false, id: undefined });
    expect(checkCaller(list, { subjectaltname: 'URI:spiffe://td/ns/b/sa/x' })).toMatchObject({
      ok: false,
      id: 'spiffe://td/ns/b/sa/x',
    });
    expect(checkCaller(list, { subjectaltname: 'URI:spiffe://td/ns/a/sa/x' })).toEqual({
      ok: true,
      id: 'spiffe://td/ns/a/sa/x',
    });
  });
});

describe('allowedCallers configuration', () => {
  const base = { policies: 'policies' };
  it('needs mTLS on the listener', () => {
    expect(() => loadConfig({ flags: { ...base, allowedCallers: ['spiffe://td/a'] }, env: {} })).toThrow(
      /allowedCallers: needs mTLS on the listener \(tlsCert, tlsKey and tlsClientCa\)/,
    );
  });
  it('names a bad entry and where it came from', () => {
    expect(() => loadConfig({ flags: base, env: { AUTHZ_ALLOWED_CALLERS: 'spiffe://td/a, frontend' } })).toThrow(
      /allowedCallers\.1: "frontend" is not a SPIFFE id .*\(from environment AUTHZ_ALLOWED_CALLERS\)/,
    );
  });
  it('accepts a list from the environment', () => {
    const c = loadConfig({
      flags: { ...base, tlsCert: 'c', tlsKey: 'k', tlsClientCa: 'ca' },
      env: { AUTHZ_ALLOWED_CALLERS: 'spiffe://td/a,spiffe://td/ns/*' },
    });
    expect(c.allowedCallers).toEqual(['spiffe://td/a', 'spiffe://td/ns/*']);
  });
});

describe('the caller gate remembers verdicts per certificate', () => {
  const cert = (uri: string, fingerprint256: string) =>
    ({ subjectaltname: `URI:${uri}`, fingerprint256 }) as unknown as PeerCertificate;
  const list = new CallerAllowList(['spiffe://cluster.local/ns/istio-system/*']);

  it('answers a certificate the same on every call, and counts every refusal', () => {
    const refused: boolean[] = [];
    const gate = callerGate(list, { onRefused: (_v, firstTime) => refused.push(firstTime) });
    const gateway = cert('spiffe://cluster.local/ns/istio-system/sa/gateway', 'AA:01');
    const intruder = cert('spiffe://cluster.local/ns/shop/sa/intruder', 'AA:02');
    for (let i = 0; i < 3; i++) {
      expect(gate({ sslPeerCertificate: gateway })).toBeUndefined();
      expect(gate({ sslPeerCertificate: intruder })).toBe('this caller may not ask for authorization decisions');
    }
    expect(refused).toEqual([true, false, false]);
  });

  it('judges each certificate by its own bytes: another fingerprint is read again', () => {
    const gate = callerGate(list, { onRefused: () => undefined });
    expect(gate({ sslPeerCertificate: cert('spiffe://cluster.local/ns/istio-system/sa/a', 'BB:01') })).toBeUndefined();
    expect(gate({ sslPeerCertificate: cert('spiffe://cluster.local/ns/shop/sa/a', 'BB:02') })).toBeDefined();
    expect(gate({ sslPeerCertificate: undefined })).toBeDefined();
    expect(gate(null)).toBeDefined();
  });
});
