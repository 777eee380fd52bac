/**
 * A generated mesh bundle for the benchmark and the swap tests: N services,
 * ten policies per service (callers by SPIFFE id, groups, header, query, IP
 * and attribute conditions, forbids with @status), a handful of mesh-wide
 * policies, a schema they validate against, and entities (groups, services).
 * `variant` changes one policy, so two variants are two versions.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface MeshBundleOptions {
  services: number;
  /** Changes the probe policy: GET /probe/<variant> on svc-000 is allowed in that variant only. */
  variant?: string;
  /** One service also has a business-hours rule reading context.time (uncacheable slice). */
  withTimeRule?: boolean;
}

export const serviceName = (i: number, n: number): string => `svc-${String(((i % n) + n) % n).padStart(3, '0')}`;
export const workloadId = (i: number, n: number): string => `spiffe://cluster.local/ns/bench/sa/${serviceName(i, n)}`;
export const POLICIES_PER_SERVICE = 10;
export const MESH_POLICIES = 4;

const SCHEMA = `// Generated for the benchmark.
type Peer = { principal: String, ip?: ipaddr, port?: Long };
type Headers = { "x-tenant"?: String, "x-block"?: String, "user-agent"?: String };
type Query = { "debug"?: String };
type RequestContext = {
  method: String, path: String, query: Query, host: String, scheme: String, protocol: String,
  headers: Headers, source: Peer, destination: Peer, time: datetime, contextExtensions: { "service"?: String },
};
entity Anonymous;
entity Group;
entity Workload in [Group] { namespace?: String, serviceAccount?: String, trustDomain?: String };
entity Service { tier?: String, maintenance?: Bool };
action read, write;
action "GET", "HEAD", "OPTIONS", "TRACE" in [read] appliesTo { principal: [Workload, Anonymous], resource: [Service], context: RequestContext };
action "POST", "PUT", "PATCH", "DELETE" in [write] appliesTo { principal: [Workload, Anonymous], resource: [Service], context: RequestContext };
action connect appliesTo { principal: [Workload, Anonymous], resource: [Service], context: RequestContext };
`;

function servicePolicies(i: number, n: number): string[] {
  const s = serviceName(i, n);
  const caller = (d: number) => `Workload::"${workloadId(i + d, n)}"`;
  return [
    `@id("${s}-read-prev") permit (principal == ${caller(-1)}, action in Action::"read", resource == Service::"${s}") when { context.path like "/api/*" };`,
    `@id("${s}-write-next") permit (principal == ${caller(1)}, action in Action::"write", resource == Service::"${s}") when { context.path like "/api/items/*" && context.headers has "x-tenant" && context.headers["x-tenant"] == "t-${i}" };`,
    `@id("${s}-team-reports") permit (principal in Group::"team-${i % 10}", action == Action::"GET", resource == Service::"${s}") when { context.path like "/reports/*" };`,
    `@id("${s}-no-delete") @status("405") @message("deletes go through the admin API") forbid (principal, action == Action::"DELETE", resource == Service::"${s}") unless { principal in Group::"admins" };`,
    `@id("${s}-no-debug") forbid (principal, action, resource == Service::"${s}") when { context.query has "debug" && context.query["debug"] == "1" };`,
    `@id("${s}-block") @status("429") forbid (principal, action, resource == Service::"${s}") when { context.headers has "x-block" };`,
    `@id("${s}-internal-net") permit (principal == ${caller(2)}, action == Action::"POST", resource == Service::"${s}") when { context.source has ip && context.source.ip.isInRange(ip("10.0.0.0/8")) && context.path == "/api/events" };`,
    `@id("${s}-tier") permit (principal in Group::"team-${(i + 3) % 10}", action in Action::"read", resource == Service::"${s}") when { resource has tier && resource.tier == "edge" };`,
    `@id("${s}-anon") @status("401") forbid (principal is Anonymous, action, resource == Service::"${s}") unless { context.path == "/healthz" };`,
    `@id("${s}-probes") permit (principal == ${caller(5)}, action == Action::"GET", resource == Service::"${s}") when { context.headers has "user-agent" && context.headers["user-agent"] like "probe/*" };`,
  ];
}

export function generateMeshBundle(opts: MeshBundleOptions): Map<string, string> {
  const n = opts.services;
  const variant = opts.variant ?? 'a';
  const files = new Map<string, string>();
  files.set('schema.cedarschema', SCHEMA);
  files.set(
    'mesh.cedar',
    [
      `@id("mesh-public") permit (principal, action in Action::"read", resource) when { context.path == "/healthz" || context.path like "/public/*" };`,
      `@id("mesh-admins") permit (principal in Group::"admins", action, resource);`,
      `@id("mesh-admin-api") @status("403") forbid (principal, action, resource) when { context.path like "/admin*" } unless { principal in Group::"admins" };`,
      `@id("mesh-maintenance") @status("503") @retry_after("300") forbid (principal, action in Action::"write", resource is Service) when { resource has maintenance && resource.maintenance };`,
      `@id("probe") permit (principal, action == Action::"GET", resource == Service::"${serviceName(0, n)}") when { context.path == "/probe/${variant}" };`,
    ].join('\n'),
  );
  for (let i = 0; i < n; i++) {
    const policies = servicePolicies(i, n);
    if (opts.withTimeRule && i === n - 1) {
      policies.push(
        `@id("${serviceName(i, n)}-business-hours") forbid (principal, action in Action::"write", resource == Service::"${serviceName(i, n)}") when { context.time.toTime() < duration("6h") };`,
      );
    }
    files.set(`services/${serviceName(i, n)}.cedar`, policies.join('\n') + '\n');
  }
  const entities: unknown[] = [{ uid: { type: 'Group', id: 'admins' }, attrs: {}, parents: [] }];
  for (let t = 0; t < 10; t++) entities.push({ uid: { type: 'Group', id: `team-${t}` }, attrs: {}, parents: [] });
  entities.push({
    uid: { type: 'Workload', id: 'spiffe://cluster.local/ns/ops/sa/admin-console' },
    attrs: {},
    parents: [{ type: 'Group', id: 'admins' }],
  });
  for (let i = 0; i < n; i++) {
    entities.push({
      uid: { type: 'Workload', id: workloadId(i, n) },
      attrs: {},
      parents: [{ type: 'Group', id: `team-${i % 10}` }],
    });
    entities.push({
      uid: { type: 'Service', id: serviceName(i, n) },
      attrs: { tier: i % 3 === 0 ? 'edge' : 'core', maintenance: i % 17 === 16 },
      parents: [],
    });
  }
  files.set('entities.json', JSON.stringify(entities, null, 1));
  return files;
}

export function policyCount(files: Map<string, string>): number {
  let count = 0;
  for (const [name, text] of files) if (name.endsWith('.cedar')) count += (text.match(/@id\(/g) ?? []).length;
  return count;
}

/** Replace the directory's content with these files (what a deploy does). */
export function writeBundle(dir: string, files: Map<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const entry of readdirSync(dir)) rmSync(path.join(dir, entry), { recursive: true, force: true });
  for (const [name, text] of files) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
}
