/**
 * Random policy sets and requests over a small world (4 services, 4 workloads,
 * groups, an action hierarchy extended by entities.json), built to reach every
 * path slicing and projection care about: each scope form, `in` through static
 * parents, headers/query/ip reads, presence-only reads, whole-record reads,
 * entity attributes, reads through entity literals, time, and policies that
 * error on missing attributes.
 */
import fc from 'fast-check';
import type { WireCheckRequest } from '../../src/envoy/wire-types.js';

export const WORKLOADS = ['w0', 'w1', 'w2', 'w3'].map((w, i) => `spiffe://cluster.local/ns/ns${i % 2}/sa/${w}`);
export const SERVICES = ['s0', 's1', 's2', 's3'];

export const WORLD_ENTITIES = [
  { uid: { type: 'Group', id: 'g0' }, attrs: { flag: true }, parents: [{ type: 'Group', id: 'g2' }] },
  { uid: { type: 'Group', id: 'g1' }, attrs: {}, parents: [] },
  { uid: { type: 'Group', id: 'g2' }, attrs: {}, parents: [] },
  { uid: { type: 'Group', id: 'sg0' }, attrs: {}, parents: [] },
  { uid: { type: 'Workload', id: WORKLOADS[0] }, attrs: { team: 'a' }, parents: [{ type: 'Group', id: 'g0' }] },
  { uid: { type: 'Workload', id: WORKLOADS[1] }, attrs: {}, parents: [{ type: 'Group', id: 'g1' }] },
  {
    uid: { type: 'Workload', id: WORKLOADS[2] },
    attrs: { team: 'b' },
    parents: [
      { type: 'Group', id: 'g0' },
      { type: 'Group', id: 'g1' },
    ],
  },
  {
    uid: { type: 'Service', id: 's0' },
    attrs: { tier: 'edge', maintenance: false },
    parents: [{ type: 'Group', id: 'sg0' }],
  },
  {
    uid: { type: 'Service', id: 's1' },
    attrs: { tier: 'core', maintenance: true },
    parents: [{ type: 'Group', id: 'sg0' }],
  },
  { uid: { type: 'Service', id: 's2' }, attrs: { maintenance: false }, parents: [] },
  { uid: { type: 'Action', id: 'write' }, attrs: {}, parents: [{ type: 'Action', id: 'mutating' }] },
];

const principalScope = fc.constantFrom(
  'principal',
  `principal == Workload::"${WORKLOADS[0]}"`,
  `principal == Workload::"${WORKLOADS[3]}"`,
  'principal in Group::"g0"',
  'principal in Group::"g2"',
  'principal is Workload',
  'principal is Anonymous',
  'principal is Workload in Group::"g1"',
);
const actionScope = fc.constantFrom(
  'action',
  'action == Action::"GET"',
  'action == Action::"POST"',
  'action == Action::"DELETE"',
  'action == Action::"connect"',
  'action in Action::"read"',
  'action in Action::"write"',
  'action in Action::"mutating"',
  'action in [Action::"GET", Action::"write"]',
);
const resourceScope = fc.constantFrom(
  'resource',
  'resource == Service::"s0"',
  'resource == Service::"s1"',
  'resource == Service::"s3"',
  'resource is Service',
  'resource in Group::"sg0"',
  'resource is Service in Group::"sg0"',
  'resource == Group::"sg0"',
);
export const conditionExpr = fc.constantFrom(
  'context.path == "/a"',
  'context.path like "/a*"',
  'context.path like "/a/*/c"',
  'context.path like "*b*"',
  '"/b" != context.path',
  '["/a", "/b"].contains(context.path)',
  'context.headers has "x-a" && context.headers["x-a"] like "1*"',
  'context.method == "GET"',
  'context.headers has "x-a"',
  'context.headers has "x-a" && context.headers["x-a"] == "1"',
  'context.headers["x-b"] == "z"',
  'context.query has "debug"',
  'context has contextExtensions && context.contextExtensions has "service"',
  'context.headers == {}',
  'context.source has ip && context.source.ip.isInRange(ip("10.0.0.0/8"))',
  'context.source.ip.isInRange(ip("10.0.0.0/8"))',
  'resource has tier && resource.tier == "edge"',
  'resource.tier == "core"',
  'resource.maintenance',
  'principal has team && principal.team == "a"',
  'principal.namespace == "ns1"',
  'principal in Group::"g1"',
  'action in Action::"read"',
  'Group::"g0".flag',
  '[principal].contains(Workload::"' + WORKLOADS[1] + '")',
  'if context.path == "/a" then true else false',
  'context.time < datetime("2026-06-01T00:00:00Z")',
  'context.time.offset(duration("-1d2h")) >= datetime("2026-05-31T23:59:59.999+2359")',
  'context.time.toDate() == datetime("2026-05-28")',
  'context.time.toTime() < duration("12h")',
  'context.time.durationSince(datetime("2024-02-29T00:00:00-0100")).toDays() > 800',
  'context.source has ip && context.source.ip.isIpv4() && !context.source.ip.isLoopback()',
  'context.source has ip && context.source.ip.isInRange(ip("2001:db8::/32"))',
  'context.source has ip && [ip("10.1.2.3"), ip("::1")].contains(context.source.ip)',
  'context.destination.port * 9223372036854775807 > 0',
  'context.destination.port - 8080 == 0',
  'decimal("922337203685477.5807").greaterThan(decimal("-922337203685477.5808"))',
  'context.path like "/a\\**"',
  'context.path like "*é*"',
  'context.headers has "x-a" && context.headers["x-a"] like "*1"',
  'context.headers == {} || context.headers has "x-b"',
  'context.destination.port == 8080',
  'true',
);

const condition = fc.record({
  kind: fc.constantFrom('when', 'unless'),
  a: conditionExpr,
  b: fc.option(conditionExpr, { nil: undefined }),
  op: fc.constantFrom('&&', '||'),
});

export const policyText = fc
  .record({
    effect: fc.constantFrom('permit', 'permit', 'forbid'),
    principal: principalScope,
    action: actionScope,
    resource: resourceScope,
    conditions: fc.array(condition, { maxLength: 2 }),
    status: fc.option(fc.constantFrom('401', '403', '429', '503'), { nil: undefined }),
  })
  .map((p) => {
    const body = p.conditions.map((c) => `${c.kind} { ${c.b ? `(${c.a}) ${c.op} (${c.b})` : c.a} }`).join(' ');
    return `${p.status ? `@status("${p.status}") ` : ''}${p.effect} (${p.principal}, ${p.action}, ${p.resource}) ${body};`;
  });

/** Policy files (some with more than ten policies, to exercise source order). */
export const policyFiles = fc
  .array(fc.array(policyText, { minLength: 1, maxLength: 14 }), { minLength: 1, maxLength: 3 })
  .map((files) => files.map((policies, i) => ({ name: `f${i}.cedar`, text: policies.join('\n') })));

export interface RequestSpec {
  principal: string;
  method: string;
  network: boolean;
  host: string;
  path: string;
  headers: Record<string, string>;
  query: string;
  sourceIp?: string;
  /** Fields no policy above reads: they must not split the cache or change answers. */
  noise: string;
  timeSeconds: number;
  ext: Record<string, string>;
}

export const requestSpec: fc.Arbitrary<RequestSpec> = fc.record({
  principal: fc.constantFrom('', ...WORKLOADS),
  method: fc.constantFrom('GET', 'HEAD', 'POST', 'DELETE', 'PUT', 'PROPFIND'),
  network: fc.integer({ min: 0, max: 7 }).map((n) => n === 0),
  host: fc.constantFrom('s0', 's1', 's2', 's3', 's9'),
  path: fc
    .tuple(
      fc.constantFrom('/a', '/a/b', '/b', '/admin', '/a/x/c', '', '/a*', '/é'),
      fc.constantFrom('', '', '/c', 'b', '/x'),
    )
    .map(([p, q]) => p + q || '/'),
  headers: fc.dictionary(fc.constantFrom('x-a', 'x-b', 'x-c'), fc.constantFrom('1', '2', 'z'), { maxKeys: 3 }),
  query: fc.constantFrom('', 'debug=1', 'x=2'),
  sourceIp: fc.option(fc.constantFrom('10.1.2.3', '192.168.0.1', '::1', '2001:db8::7', '127.0.0.1'), {
    nil: undefined,
  }),
  noise: fc.string({ maxLength: 6 }),
  timeSeconds: fc.constantFrom(1_780_000_000, 1_790_000_000, 1_779_926_400, 1_780_012_799),
  ext: fc.constantFrom<Record<string, string>>({}, { service: 's1' }),
});

export function specToCheckRequest(r: RequestSpec): WireCheckRequest {
  const source = {
    ...(r.sourceIp ? { address: { socket_address: { address: r.sourceIp, port_value: 40000 } } } : {}),
    ...(r.principal ? { principal: r.principal } : {}),
  };
  const destination = {
    address: { socket_address: { address: '10.0.0.9', port_value: 8080 } },
    principal: `spiffe://cluster.local/ns/x/sa/${r.host}`,
  };
  if (r.network) {
    return { attributes: { source, destination, tls_session: { sni: r.host }, context_extensions: r.ext } };
  }
  return {
    attributes: {
      source,
      destination,
      context_extensions: r.ext,
      request: {
        time: { seconds: String(r.timeSeconds), nanos: 0 },
        http: {
          method: r.method,
          path: r.query ? `${r.path}?${r.query}` : r.path,
          host: `${r.host}:8080`,
          scheme: 'http',
          protocol: 'HTTP/1.1',
          headers: { ...r.headers, 'x-request-id': r.noise, 'user-agent': `ua/${r.noise}` },
        },
      },
    },
  };
}
