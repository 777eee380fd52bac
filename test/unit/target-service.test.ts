/**
 * Which service a request is for, from what the mesh vouches for: table tests
 * of the resolution order (context_extensions → destination identity → Host at
 * gateways and front proxies), every host form, mismatches, SPIFFE parsing and
 * path normalisation. Requests go through checkRequestToInput, as Envoy's do.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authorizeCheckRequest } from '../../src/pipeline/authorize-input.js';
import { compilePolicyDirectory } from '../../src/bundle/format/compile-policy-directory.js';
import { resolveLockdownService } from '../../src/operator/lockdown.js';
import { EXAMPLE_POLICIES } from '../support/policy-dir.js';
import { parseBundleSettings } from '../../src/bundle/bundle-settings.js';
import { parseSpiffeId } from '../../src/identity/spiffe-id.js';
import { checkRequestToInput } from '../../src/envoy/check-request.js';
import { normalizePath } from '../../src/envoy/path-normalization.js';
import { canonicalHost, kubernetesServiceName } from '../../src/envoy/service-names.js';
import { ServiceDirectory } from '../../src/envoy/target-service.js';
import type { WireCheckRequest } from '../../src/envoy/wire-types.js';

const sa = (ns: string, name: string) => `spiffe://cluster.local/ns/${ns}/sa/${name}`;
const ORDERS = sa('shop', 'orders');
const PAYMENTS = sa('shop', 'payments');
const FRONTEND = sa('shop', 'frontend');
const GATEWAY = sa('istio-system', 'istio-ingressgateway-service-account');

/** The example mesh's naming, as in policies/bundle.yaml. */
const MESH = parseBundleSettings(`
services:
  frontend: { identities: ["${FRONTEND}"], hosts: [shop.example.com] }
  orders: { identities: ["${ORDERS}", "${sa('shop', 'orders-canary')}"], hosts: [orders.example.com] }
  payments: { identities: ["${PAYMENTS}"] }
gateways: ["${GATEWAY}"]
`);
/** Services the policy set knows from entities and policies (besides the map). */
const ENTITIES = new Set(['frontend', 'orders', 'payments', 'inventory']);
const withMap = new ServiceDirectory(MESH, (s) => ENTITIES.has(s));
const noMap = new ServiceDirectory(parseBundleSettings(''), (s) => ENTITIES.has(s));
const meshOnly = new ServiceDirectory(parseBundleSettings('frontProxy: false'), (s) => ENTITIES.has(s));

interface Req {
  host?: string;
  destination?: string;
  ext?: Record<string, string>;
  network?: boolean;
  sni?: string;
  destinationIp?: string;
}

function checkRequest(r: Req): WireCheckRequest {
  const destination = {
    ...(r.destination ? { principal: r.destination } : {}),
    ...(r.destinationIp ? { address: { socket_address: { address: r.destinationIp, port_value: 8080 } } } : {}),
  };
  const attributes: Record<string, unknown> = {
    source: { principal: FRONTEND },
    destination,
    context_extensions: r.ext ?? {},
  };
  if (r.sni) attributes.tls_session = { sni: r.sni };
  if (!r.network) attributes.request = { http: { method: 'GET', path: '/orders/1', host: r.host ?? '' } };
  return { attributes } as WireCheckRequest;
}

const resolve = (r: Req, targets: ServiceDirectory) =>
  checkRequestToInput(checkRequest(r), { nowMs: () => 0, targets });

type Expected = { service: string } | { reason: string; service?: string };

const rows: { name: string; req: Req; dir?: ServiceDirectory; expected: Expected }[] = [
  // Sidecar (Istio CUSTOM, no context_extensions): the destination identity decides.
  {
    name: 'sidecar: the destination identity names the service',
    req: { host: 'orders', destination: ORDERS },
    expected: { service: 'orders' },
  },
  {
    name: 'sidecar: a second identity of the same service',
    req: { host: 'orders', destination: sa('shop', 'orders-canary') },
    expected: { service: 'orders' },
  },
  {
    name: 'sidecar: Host spoofing another known service is a host_mismatch',
    req: { host: 'orders', destination: PAYMENTS },
    expected: { reason: 'host_mismatch', service: 'payments' },
  },
  {
    name: 'sidecar: spoofing with the long form',
    req: { host: 'orders.shop.svc.cluster.local:8080', destination: PAYMENTS },
    expected: { reason: 'host_mismatch' },
  },
  {
    name: 'sidecar: spoofing with an alias from the map',
    req: { host: 'orders.example.com', destination: PAYMENTS },
    expected: { reason: 'host_mismatch' },
  },
  {
    name: 'sidecar without a map: spoofing a service an entity names',
    req: { host: 'orders.shop', destination: PAYMENTS },
    dir: noMap,
    expected: { reason: 'host_mismatch' },
  },
  {
    name: 'sidecar: a host naming no known service is just data',
    req: { host: 'payments-7d9f.pod.local', destination: PAYMENTS },
    expected: { service: 'payments' },
  },
  {
    name: 'sidecar: the pod IP as host',
    req: { host: '10.1.2.3:8080', destination: PAYMENTS },
    expected: { service: 'payments' },
  },
  {
    name: "sidecar: another namespace's service of the same name is not this one",
    req: { host: 'orders.other', destination: PAYMENTS },
    expected: { service: 'payments' },
  },
  { name: 'sidecar: no host at all', req: { destination: PAYMENTS }, expected: { service: 'payments' } },
  {
    name: 'sidecar without a map: the service account names the service',
    req: { host: 'inventory', destination: sa('stock', 'inventory') },
    dir: noMap,
    expected: { service: 'inventory' },
  },
  {
    name: 'sidecar: an unlisted identity claiming a mapped name gets its whole id',
    req: { host: 'x', destination: sa('untrusted', 'payments') },
    expected: { service: sa('untrusted', 'payments') },
  },
  {
    name: 'sidecar: an unlisted identity with another account name',
    req: { host: 'x', destination: sa('stock', 'inventory') },
    expected: { service: 'inventory' },
  },
  {
    name: 'sidecar: a SPIFFE id of another shape names the service by its whole text',
    req: { host: 'x', destination: 'spiffe://cluster.local/ns/untrusted/sa/x/ns/shop' },
    expected: { service: 'spiffe://cluster.local/ns/untrusted/sa/x/ns/shop' },
  },
  // context_extensions: the operator's route setting wins over everything.
  {
    name: 'route: context_extensions.service wins over identity and host',
    req: { host: 'orders', destination: PAYMENTS, ext: { service: 'payments' } },
    expected: { service: 'payments' },
  },
  {
    name: 'route: context_extensions.service in another form',
    req: { host: 'whatever', ext: { service: 'Orders.' } },
    expected: { service: 'orders' },
  },
  {
    name: 'route: context_extensions.service as a map alias',
    req: { host: 'whatever', ext: { service: 'orders.example.com' } },
    expected: { service: 'orders' },
  },
  // Ingress gateway: the host routes the request, so it decides.
  {
    name: 'gateway: the host decides',
    req: { host: 'orders.example.com', destination: GATEWAY },
    expected: { service: 'orders' },
  },
  {
    name: 'gateway: storefront host',
    req: { host: 'Shop.Example.com.:443', destination: GATEWAY },
    expected: { service: 'frontend' },
  },
  {
    name: 'gateway: an unknown host is its own name',
    req: { host: 'api.example.com', destination: GATEWAY },
    expected: { service: 'api.example.com' },
  },
  { name: 'gateway: no host', req: { destination: GATEWAY }, expected: { reason: 'malformed_request' } },
  // Front proxy (Envoy at the edge, no mTLS): the host decides, as envoy/envoy.yaml expects.
  { name: 'front proxy: short name', req: { host: 'orders' }, expected: { service: 'orders' } },
  { name: 'front proxy: trailing dot', req: { host: 'orders.' }, expected: { service: 'orders' } },
  { name: 'front proxy: upper case and port', req: { host: 'ORDERS:8080' }, expected: { service: 'orders' } },
  { name: 'front proxy: namespace form', req: { host: 'orders.shop' }, expected: { service: 'orders' } },
  { name: 'front proxy: svc form', req: { host: 'orders.shop.svc' }, expected: { service: 'orders' } },
  {
    name: 'front proxy: long form with port',
    req: { host: 'orders.shop.svc.cluster.local:8080' },
    expected: { service: 'orders' },
  },
  {
    name: 'front proxy: long form with trailing dot',
    req: { host: 'orders.shop.svc.cluster.local.' },
    expected: { service: 'orders' },
  },
  {
    name: 'front proxy: IPv6 literal with port',
    req: { host: '[2001:DB8::1]:8080' },
    expected: { service: '2001:db8::1' },
  },
  {
    name: 'front proxy without a map: long forms stay as they are (no namespace is known)',
    req: { host: 'orders.shop.svc.cluster.local' },
    dir: noMap,
    expected: { service: 'orders.shop.svc.cluster.local' },
  },
  {
    name: "front proxy: a TLS edge's DNS certificate name is no mesh identity",
    req: { host: 'orders', destination: 'shop.example.com' },
    expected: { service: 'orders' },
  },
  { name: 'front proxy: no host, no service', req: {}, expected: { reason: 'malformed_request' } },
  // frontProxy: false (a mesh-only bundle): without a mesh identity nothing names the target.
  {
    name: 'mesh only: no destination identity is refused',
    req: { host: 'orders' },
    dir: meshOnly,
    expected: { reason: 'no_destination_identity' },
  },
  {
    name: 'mesh only: a DNS certificate name is refused',
    req: { host: 'orders', destination: 'shop.example.com' },
    dir: meshOnly,
    expected: { reason: 'no_destination_identity' },
  },
  {
    name: 'mesh only: context_extensions still names it',
    req: { host: 'x', ext: { service: 'orders' } },
    dir: meshOnly,
    expected: { service: 'orders' },
  },
  {
    name: 'mesh only: the identity still names it',
    req: { host: 'x', destination: ORDERS },
    dir: meshOnly,
    expected: { service: 'orders' },
  },
  // Network (TCP) checks: SNI plays the host.
  {
    name: 'network: the destination identity wins over the SNI',
    req: { network: true, destination: PAYMENTS, sni: 'payments.shop.svc.cluster.local' },
    expected: { service: 'payments' },
  },
  {
    name: 'network: an SNI naming another known service is a mismatch',
    req: { network: true, destination: PAYMENTS, sni: 'orders.shop.svc.cluster.local' },
    expected: { reason: 'host_mismatch' },
  },
  {
    name: 'network: the SNI at a front proxy',
    req: { network: true, sni: 'Orders.Example.com' },
    expected: { service: 'orders' },
  },
  {
    name: 'network: the destination address as the last resort',
    req: { network: true, destinationIp: '10.9.9.9' },
    expected: { service: '10.9.9.9' },
  },
  {
    name: 'network: mesh only, no identity',
    req: { network: true, sni: 'orders' },
    dir: meshOnly,
    expected: { reason: 'no_destination_identity' },
  },
];

describe('target resolution', () => {
  for (const row of rows) {
    it(row.name, () => {
      const r = resolve(row.req, row.dir ?? withMap);
      if ('reason' in row.expected) {
        expect(r.ok).toBe(false);
        if (r.ok) return;
        expect(r.reason).toBe(row.expected.reason);
        if (row.expected.service) expect(r.input?.service).toBe(row.expected.service);
      } else {
        expect(r.ok, r.ok ? '' : r.message).toBe(true);
        if (r.ok) expect(r.input.service).toBe(row.expected.service);
      }
    });
  }

  it('a host_mismatch names both services and keeps the request for the log', () => {
    const r = resolve({ host: 'Orders:8080', destination: PAYMENTS }, withMap);
    expect(r).toMatchObject({
      ok: false,
      reason: 'host_mismatch',
      message: `the host "orders" names orders, but the destination ${PAYMENTS} is payments`,
      mismatch: { identity: PAYMENTS, service: 'payments', host: 'orders', hostService: 'orders' },
      input: { service: 'payments', host: 'orders', path: '/orders/1' },
    });
  });

  it('context.host keeps the normalised host, not the resolved service', () => {
    const r = resolve({ host: 'Orders.Shop.SVC.cluster.local.:8080', destination: ORDERS }, withMap);
    expect(r).toMatchObject({ ok: true, input: { host: 'orders.shop.svc.cluster.local', service: 'orders' } });
  });
});

describe('bundle.yaml services:', () => {
  it.each([
    {
      name: 'an identity listed for two services',
      yaml: `services:\n  a: { identities: ["${ORDERS}"] }\n  b: { identities: ["${ORDERS}"] }`,
      message: `services.b.identities.0: ${ORDERS} is already an identity of a`,
    },
    {
      name: 'a host alias listed for two services',
      yaml: 'services:\n  a: { hosts: [x.example.com] }\n  b: { hosts: [X.example.com.] }',
      message: 'services.b.hosts.0: host "x.example.com" already names a',
    },
    {
      name: "an alias that is another service's Kubernetes form",
      yaml: `services:\n  orders: { identities: ["${ORDERS}"] }\n  other: { hosts: [orders.shop] }`,
      message: 'services.other.hosts.0: host "orders.shop" already names orders',
    },
    {
      name: 'an identity that is also a gateway',
      yaml: `gateways: ["${GATEWAY}"]\nservices:\n  a: { identities: ["${GATEWAY}"] }`,
      message: 'is also listed in gateways',
    },
    {
      name: 'a service name that is not canonical',
      yaml: 'services:\n  Orders: {}',
      message: 'service names are lower-case',
    },
    { name: 'an unknown key', yaml: 'services:\n  orders: { identity: [x] }', message: 'services.orders' },
    {
      name: 'a bad cluster domain',
      yaml: 'clusterDomain: "cluster local"',
      message: 'clusterDomain: expected a DNS domain',
    },
  ])('refuses $name', ({ yaml, message }) => {
    expect(() => parseBundleSettings(yaml)).toThrow(message);
  });
});

describe('canonical names', () => {
  it.each([
    ['orders', 'orders'],
    ['Orders', 'orders'],
    ['orders.', 'orders'],
    ['orders:8080', 'orders'],
    ['orders.shop.svc.cluster.local.:8080', 'orders.shop.svc.cluster.local'],
    ['[::1]:80', '::1'],
    ['::1', '::1'],
    [' orders ', 'orders'],
    ['', ''],
  ])('%j → %j', (raw, expected) => expect(canonicalHost(raw)).toBe(expected));

  it.each([
    ['orders', 'shop', 'orders'],
    ['orders.shop', 'shop', 'orders'],
    ['orders.shop.svc', 'shop', 'orders'],
    ['orders.shop.svc.cluster.local', 'shop', 'orders'],
    ['orders.other', 'shop', undefined],
    ['orders.shop.svc.example.com', 'shop', undefined],
    ['orders.shop.pod', 'shop', undefined],
    ['10.0.0.1', 'shop', undefined],
  ])('Kubernetes form %j in namespace %j → %j', (host, ns, expected) =>
    expect(kubernetesServiceName(host, ns)).toBe(expected),
  );
});

describe('SPIFFE ids are parsed strictly', () => {
  it.each([
    [
      'spiffe://cluster.local/ns/shop/sa/frontend',
      { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'frontend' },
    ],
    ['spiffe://td.example/ns/a-b/sa/c_d.e', { trustDomain: 'td.example', namespace: 'a-b', serviceAccount: 'c_d.e' }],
    ['spiffe://cluster.local/ns/untrusted/sa/x/ns/shop', undefined],
    ['spiffe://cluster.local/sa/x/ns/shop', undefined],
    ['spiffe://cluster.local/ns/shop', undefined],
    ['spiffe://cluster.local/ns//sa/x', undefined],
    ['spiffe://cluster.local/ns/../sa/x', undefined],
    ['spiffe://cluster.local/ns/shop/sa/x/', undefined],
    ['spiffe://Cluster.Local/ns/shop/sa/x', undefined],
    ['spiffe://cluster.local/ns/shop/sa/x%2Fy', undefined],
    ['spiffe:///ns/shop/sa/x', undefined],
    ['https://cluster.local/ns/shop/sa/x', undefined],
    ['', undefined],
  ])('%j', (id, expected) => expect(parseSpiffeId(id)).toEqual(expected));
});

describe('context.path is normalised as Envoy normalize_path + merge_slashes do', () => {
  it.each([
    ['/orders/1', '/orders/1'],
    ['/public/../admin', '/admin'],
    ['/public/./x', '/public/x'],
    ['/a/b/../../../../c', '/c'],
    ['/a/b/%2e%2e/c', '/a/c'],
    ['/a/b/%2E./c', '/a/c'],
    ['/a/..\\admin', '/admin'],
    ['//admin', '/admin'],
    ['/a///b//c', '/a/b/c'],
    ['/a//../b', '/a/b'],
    ['/%61dmin', '/admin'],
    ['/a/%2F/b', '/a/%2F/b'],
    ['/a/%2f%2F', '/a/%2f%2F'],
    ['/%5c%25', '/%5c%25'],
    ['/A/B', '/A/B'],
    ['/a/b/..', '/a/'],
    ['/a/.', '/a/'],
    ['..', '/'],
    ['a/b/../c', '/a/c'],
    ['/x%zz', '/x%zz'],
    ['/x%2', '/x%2'],
  ])('%j → %j', (raw, expected) => expect(normalizePath(raw)).toEqual({ ok: true, path: expected }));

  it('for any path: absolute, no empty or dot segments left, and normalising again changes nothing', () => {
    const piece = fc.constantFrom('a', 'B', '.', '..', '', '%2e', '%2E%2e', '%2F', '%41', '%zz', '\\', '~', 'x.y');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 10 }), fc.boolean(), (parts, lead) => {
        const r = normalizePath((lead ? '/' : '') + parts.join('/'));
        if (!r.ok) return;
        expect(r.path.startsWith('/')).toBe(true);
        expect(r.path).not.toMatch(/\/\/|\/\.\.?(\/|$)/);
        expect(normalizePath(r.path)).toEqual(r);
      }),
    );
  });

  it('refuses an encoded NUL, as Envoy does', () => {
    expect(normalizePath('/xyz/.%00../abc')).toMatchObject({ ok: false });
    expect(
      checkRequestToInput({
        attributes: { request: { http: { method: 'GET', path: '/a%00', host: 'x' } } },
      } as WireCheckRequest),
    ).toMatchObject({ ok: false, reason: 'malformed_request' });
  });

  it('keeps the path as sent in rawPath, without the query', () => {
    const r = checkRequestToInput({
      attributes: { request: { http: { method: 'GET', path: '/public/..//admin?x=1', host: 'x' } } },
    } as WireCheckRequest);
    expect(r).toMatchObject({ ok: true, input: { path: '/admin', rawPath: '/public/..//admin', query: { x: '1' } } });
  });
});

describe('the example mesh (policies/) and the Istio walkthrough', () => {
  it('envoy/istio/spoofed-host-check.json is denied as host_mismatch, decided for payments', async () => {
    const set = await compilePolicyDirectory(EXAMPLE_POLICIES);
    const req = JSON.parse(
      readFileSync(path.join(EXAMPLE_POLICIES, '../envoy/istio/spoofed-host-check.json'), 'utf8'),
    ) as WireCheckRequest;
    const auth = authorizeCheckRequest(req, set);
    expect(auth.decision).toMatchObject({ kind: 'deny', reason: 'host_mismatch', status: 403 });
    expect(auth.target?.resource).toBe('payments');
    expect(auth.mismatch).toMatchObject({ host: 'orders', hostService: 'orders', service: 'payments' });
    set.policySet.retire();
  });

  it('lockdown names resolve as requests do', () => {
    const files = new Map<string, Buffer>();
    for (const name of ['bundle.yaml', 'entities.json', 'orders.cedar', 'mesh.cedar'])
      files.set(name, readFileSync(path.join(EXAMPLE_POLICIES, name)));
    expect(resolveLockdownService(files, 'orders.shop.svc.cluster.local:8080')).toEqual({
      service: 'orders',
      known: true,
    });
    expect(resolveLockdownService(files, 'Orders.')).toEqual({ service: 'orders', known: true });
    expect(resolveLockdownService(files, 'shop.example.com')).toEqual({ service: 'frontend', known: true });
    expect(resolveLockdownService(files, 'orders.other')).toEqual({ service: 'orders.other', known: false });
    expect(resolveLockdownService(files, 'paymnets')).toEqual({ service: 'paymnets', known: false });
  });
});
