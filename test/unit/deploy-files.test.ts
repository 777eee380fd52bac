/**
 * The deployment files (Envoy, compose, Dockerfile, Istio, Grafana) cannot be
 * run here (no Docker engine, no cluster), so this suite parses every one of
 * them and checks the wiring a typo would break: the ext_authz filter reaches
 * a real HTTP/2 cluster on the server's port, every route tells the server
 * which service it is, compose starts things in the right order against the
 * right endpoints, Istio names match across resources, and every dashboard
 * query names a metric the server exports.
 */
import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { DEFAULT_ADMIN, DEFAULT_LISTEN } from '../../src/config/schema.js';

// Parsed YAML/JSON is untyped by nature; these tests are what give it shape.
// biome-ignore lint/suspicious/noExplicitAny: manifests are probed by path; a wrong path fails the assertion that reads it.
type Json = any;

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (rel: string): string => readFileSync(path.join(ROOT, rel), 'utf8');

/** The server's documented ports (`--listen 0.0.0.0:9191`, `--admin 127.0.0.1:9192`). */
const SERVER_GRPC_PORT = 9191;
const SERVER_ADMIN_PORT = 9192;
/**
 * Containers bind the admin port on every interface: probes and Prometheus
 * come from outside the container's loopback (the server's own default is
 * loopback, which would fail every probe).
 */
const CONTAINER_ADMIN = `0.0.0.0:${SERVER_ADMIN_PORT}`;
/** Envoy's own ext_authz default; our budget must be well under it. */
const ENVOY_DEFAULT_EXT_AUTHZ_TIMEOUT_MS = 200;

const EXT_AUTHZ_HTTP_FILTER = 'envoy.filters.http.ext_authz';
const T = {
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  httpExtAuthz: 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
  perRoute: 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  netExtAuthz: 'type.googleapis.com/envoy.extensions.filters.network.ext_authz.v3.ExtAuthz',
  tcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  httpProtocolOptions: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
} as const;
const HTTP_PROTOCOL_OPTIONS_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** The AUTHZ_* variables of the server's documented contract; anything else in a manifest is a typo. */
const AUTHZ_ENV_VARS = new Set([
  'AUTHZ_LISTEN',
  'AUTHZ_ADMIN',
  'AUTHZ_POLICIES',
  'AUTHZ_S3_ENDPOINT',
  'AUTHZ_BUCKET',
  'AUTHZ_PREFIX',
  'AUTHZ_BUNDLE',
  'AUTHZ_STATE_DIR',
  'AUTHZ_POLL_INTERVAL',
  'AUTHZ_FAIL_MODE',
  'AUTHZ_LOG_LEVEL',
  'AUTHZ_NOTIFY',
]);

/** Metrics the server exports (prom-client defaults included). */
// The full authz_* list is held to the registry by test/component/dashboard.test.ts; this one guards spelling.
const EXPORTED_METRICS = new Set([
  'authz_decisions_total',
  'authz_check_duration_seconds',
  'authz_bundle_info',
  'authz_bundle_loads_total',
  'authz_engine_fallback_total',
  'authz_bundle_last_sync_timestamp_seconds',
  'authz_decision_cache_lookups_total',
  'authz_shadow_mismatches_total',
  'authz_ratelimited_total',
  'process_resident_memory_bytes',
  'nodejs_eventloop_lag_seconds',
  'authz_policies',
  'authz_bundle_activation_duration_seconds',
  'authz_bundle_activation_longest_step_seconds',
  'authz_bundle_store_errors_total',
  'authz_bundle_download_duration_seconds',
  'authz_jwt_results_total',
  'authz_load_ratio',
  'authz_decision_cache_entries',
  'authz_ratelimit_keys',
  'authz_ratelimit_evictions_total',
  'authz_shadow_evaluations_total',
  'authz_shadow_skipped_total',
  'authz_shadow_version_info',
  'authz_callers_refused_total',
  'authz_grpc_calls_dropped_total',
  'authz_grpc_pending_request_bytes',
  'authz_process_faults_total',
  'authz_log_lines_dropped_total',
  'authz_push_messages_total',
  'authz_push_connected',
  'authz_push_last_message_age_seconds',
]);
const HISTOGRAMS = new Set([
  'authz_check_duration_seconds',
  'authz_bundle_activation_duration_seconds',
  'authz_bundle_download_duration_seconds',
]);

// ---------------------------------------------------------------- helpers

function loadYaml(rel: string): Json {
  // parse() throws on syntax errors and duplicate keys.
  return parse(read(rel));
}

function loadYamlDocs(rel: string): Json[] {
  const docs = parseAllDocuments(read(rel));
  const list = Array.isArray(docs) ? docs : [docs];
  for (const d of list) expect(d.errors, `${rel}: ${d.errors.map((e) => e.message).join('; ')}`).toEqual([]);
  return list.map((d) => d.toJS()).filter((d) => d !== null && d !== undefined);
}

/** Protobuf JSON duration ("0.050s") → milliseconds. Anything else fails the test. */
function durationMs(value: unknown): number {
  const m = typeof value === 'string' ? /^(\d+(?:\.\d+)?)s$/.exec(value) : null;
  if (!m) throw new Error(`not a protobuf duration string: ${JSON.stringify(value)}`);
  return Number(m[1]) * 1000;
}

function hostPort(value: string): { host: string; port: number } {
  const i = value.lastIndexOf(':');
  return { host: value.slice(0, i), port: Number(value.slice(i + 1)) };
}

/** Visits every object in a tree with the key path that led to it. */
function walk(node: Json, visit: (obj: Record<string, Json>, at: string) => void, at = '$'): void {
  if (Array.isArray(node)) {
    node.forEach((v, i) => {
      walk(v, visit, `${at}[${i}]`);
    });
  } else if (node && typeof node === 'object') {
    visit(node, at);
    for (const [k, v] of Object.entries(node)) walk(v, visit, `${at}.${k}`);
  }
}

// ------------------------------------------------------------- Envoy model

interface EnvoyFile {
  file: string;
  cfg: Json;
}

/** The configs that call the gRPC service; envoy-http.yaml (the HTTP service) has its own checks below. */
const HTTP_SERVICE_FILE = 'envoy/envoy-http.yaml';
const ENVOY_FILES: EnvoyFile[] = readdirSync(path.join(ROOT, 'envoy'))
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => ({ file: `envoy/${f}`, cfg: loadYaml(`envoy/${f}`) }))
  .filter((e) => e.file !== HTTP_SERVICE_FILE);

const listeners = (cfg: Json): Json[] => cfg.static_resources?.listeners ?? [];
const clusters = (cfg: Json): Json[] => cfg.static_resources?.clusters ?? [];
const cluster = (cfg: Json, name: string): Json => clusters(cfg).find((c) => c.name === name);
const networkFilters = (cfg: Json): Json[][] =>
  listeners(cfg).flatMap((l) => (l.filter_chains ?? []).map((fc: Json) => fc.filters ?? []));
const hcms = (cfg: Json): Json[] =>
  networkFilters(cfg)
    .flat()
    .map((f) => f.typed_config)
    .filter((tc) => tc?.['@type'] === T.hcm);

function endpoints(c: Json): { address: string; port: number }[] {
  return (c.load_assignment?.endpoints ?? []).flatMap((e: Json) =>
    (e.lb_endpoints ?? []).map((lb: Json) => ({
      address: lb.endpoint.address.socket_address.address,
      port: lb.endpoint.address.socket_address.port_value,
    })),
  );
}

/** Every ext_authz config (HTTP or network) in a file. */
function extAuthzConfigs(cfg: Json): Json[] {
  const http = hcms(cfg).flatMap((h) => h.http_filters ?? []);
  return [...http, ...networkFilters(cfg).flat()]
    .map((f) => f.typed_config)
    .filter((tc) => tc?.['@type'] === T.httpExtAuthz || tc?.['@type'] === T.netExtAuthz);
}

const routesOf = (hcm: Json): Json[] => (hcm.route_config?.virtual_hosts ?? []).flatMap((vh: Json) => vh.routes ?? []);
const perRoute = (route: Json): Json => route.typed_per_filter_config?.[EXT_AUTHZ_HTTP_FILTER];
const matchKey = (route: Json): string =>
  route.match.path ?? route.match.path_separated_prefix ?? route.match.prefix ?? JSON.stringify(route.match);

// ------------------------------------------------------------------ Envoy

describe('server defaults', () => {
  it('the admin port defaults to loopback (safe on a laptop); the gRPC port to all interfaces', () => {
    expect(hostPort(DEFAULT_ADMIN)).toEqual({ host: '127.0.0.1', port: SERVER_ADMIN_PORT });
    expect(hostPort(DEFAULT_LISTEN)).toEqual({ host: '0.0.0.0', port: SERVER_GRPC_PORT });
  });
});

describe('Envoy configs: every file', () => {
  it('ships the HTTP and the TCP variant over gRPC, and the HTTP ext_authz service variant', () => {
    expect(ENVOY_FILES.map((e) => e.file).sort()).toEqual([
      'envoy/envoy-ratelimit.yaml',
      'envoy/envoy-tcp.yaml',
      'envoy/envoy.yaml',
    ]);
    expect(existsSync(path.join(ROOT, HTTP_SERVICE_FILE))).toBe(true);
  });

  describe.each(ENVOY_FILES)('$file', ({ file, cfg }) => {
    it('uses only v3 typed configs and no deprecated fields', () => {
      const problems: string[] = [];
      walk(cfg, (obj, at) => {
        const type = obj['@type'];
        if (typeof type === 'string' && !/\.v3\./.test(type)) problems.push(`${at}: non-v3 @type ${type}`);
        for (const key of ['use_alpha', 'hosts', 'tls_context', 'access_log_path']) {
          if (key in obj) problems.push(`${at}.${key}`);
        }
        // v2-era untyped filter config
        if (typeof obj.name === 'string' && obj.name.startsWith('envoy.') && 'config' in obj)
          problems.push(`${at}.config`);
      });
      for (const c of clusters(cfg)) {
        for (const key of [
          'http2_protocol_options',
          'http_protocol_options',
          'common_http_protocol_options',
          'upstream_http_protocol_options',
        ]) {
          if (key in c) problems.push(`cluster ${c.name}: ${key} belongs in typed_extension_protocol_options`);
        }
      }
      expect(problems, file).toEqual([]);
    });

    it('exposes the admin interface on :9901', () => {
      expect(cfg.admin.address.socket_address.port_value).toBe(9901);
    });

    it('every cluster a filter or route names exists', () => {
      const names = new Set(clusters(cfg).map((c) => c.name));
      const referenced: string[] = [];
      walk(cfg, (obj) => {
        if (typeof obj.cluster_name === 'string') referenced.push(obj.cluster_name);
        if (typeof obj.cluster === 'string') referenced.push(obj.cluster);
      });
      expect(referenced.length).toBeGreaterThan(0);
      for (const name of referenced) expect(names, `cluster "${name}"`).toContain(name);
    });

    it('ext_authz calls the server over gRPC v3 within a short deadline and fails closed', () => {
      const configs = extAuthzConfigs(cfg);
      expect(configs.length).toBeGreaterThan(0);
      for (const ea of configs) {
        expect(ea.transport_api_version).toBe('V3');
        expect(ea.failure_mode_allow).toBe(false);
        expect(ea.include_peer_certificate).toBe(true);
        expect(typeof ea.grpc_service?.envoy_grpc?.cluster_name).toBe('string');
        const timeout = durationMs(ea.grpc_service.timeout);
        expect(timeout).toBeGreaterThan(0);
        expect(timeout).toBeLessThan(ENVOY_DEFAULT_EXT_AUTHZ_TIMEOUT_MS);
      }
    });

    it("the authorization cluster speaks HTTP/2, is health-checked over gRPC and points at the server's port", () => {
      for (const ea of extAuthzConfigs(cfg)) {
        const c = cluster(cfg, ea.grpc_service.envoy_grpc.cluster_name);
        expect(c, 'authz cluster').toBeDefined();
        const opts = c.typed_extension_protocol_options?.[HTTP_PROTOCOL_OPTIONS_KEY];
        expect(opts?.['@type']).toBe(T.httpProtocolOptions);
        expect(opts.explicit_http_config?.http2_protocol_options).toBeTypeOf('object');
        const eps = endpoints(c);
        expect(eps.length).toBeGreaterThan(0);
        for (const ep of eps) expect(ep.port).toBe(SERVER_GRPC_PORT);
        const hc = (c.health_checks ?? []).find((h: Json) => h.grpc_health_check);
        expect(hc, 'grpc_health_check').toBeDefined();
        // The server reports SERVING for "" and for the Authorization service.
        expect(['', 'envoy.service.auth.v3.Authorization']).toContain(hc.grpc_health_check.service_name ?? '');
        expect(hc.unhealthy_threshold).toBeGreaterThan(0);
        expect(hc.healthy_threshold).toBeGreaterThan(0);
      }
    });
  });
});

describe('envoy/envoy-http.yaml (HTTP ext_authz service)', () => {
  const cfg = loadYaml(HTTP_SERVICE_FILE);
  const [ea] = extAuthzConfigs(cfg);
  const hcm = hcms(cfg)[0];

  it('calls the HTTP service on its port, with the path prefix, a short timeout, failing closed', () => {
    expect(ea.transport_api_version).toBe('V3');
    expect(ea.failure_mode_allow).toBe(false);
    expect(ea.http_service.path_prefix).toBe('/ext-authz');
    const timeout = durationMs(ea.http_service.server_uri.timeout);
    expect(timeout).toBeGreaterThan(0);
    expect(timeout).toBeLessThan(ENVOY_DEFAULT_EXT_AUTHZ_TIMEOUT_MS);
    const c = cluster(cfg, ea.http_service.server_uri.cluster);
    expect(endpoints(c).map((e) => e.port)).toEqual([9193]);
    expect(c.health_checks[0].http_health_check.path).toBe('/readyz');
  });

  it('the identity header is set by Envoy from the verified certificate and sent to the server', () => {
    expect(hcm.forward_client_cert_details).toBe('SANITIZE_SET');
    expect(hcm.set_current_client_cert_details.uri).toBe(true);
    expect(ea.authorization_request.allowed_headers.patterns).toContainEqual({ exact: 'x-forwarded-client-cert' });
  });

  it("a deny's headers reach the client", () => {
    const allowed = ea.authorization_response.allowed_client_headers.patterns.map((p: Json) => p.exact);
    for (const h of ['content-type', 'retry-after', 'www-authenticate']) expect(allowed).toContain(h);
  });
});

describe('envoy/envoy.yaml (HTTP front proxy)', () => {
  const cfg = ENVOY_FILES.find((e) => e.file === 'envoy/envoy.yaml')!.cfg;
  const managers = hcms(cfg);

  it('listens for HTTP on :8080', () => {
    const ports = listeners(cfg).map((l) => l.address.socket_address.port_value);
    expect(ports).toContain(8080);
    expect(managers.length).toBe(listeners(cfg).length);
  });

  it('runs ext_authz before the router, and the router last, in every connection manager', () => {
    for (const hcm of managers) {
      const names = (hcm.http_filters as Json[]).map((f) => f.name);
      const types = (hcm.http_filters as Json[]).map((f) => f.typed_config?.['@type']);
      const authz = names.indexOf(EXT_AUTHZ_HTTP_FILTER);
      expect(authz, `${hcm.stat_prefix}: ${names.join(' → ')}`).toBeGreaterThanOrEqual(0);
      expect(types[authz]).toBe(T.httpExtAuthz);
      // Exactly one router, last: anything after it never runs, and a router
      // ahead of ext_authz would forward requests before they are checked.
      expect(types.filter((t) => t === T.router)).toHaveLength(1);
      expect(types.at(-1)).toBe(T.router);
      expect(authz).toBeLessThan(types.indexOf(T.router));
    }
  });

  it('buffers a bounded body without answering 413 for large ones', () => {
    for (const ea of extAuthzConfigs(cfg)) {
      expect(ea.with_request_body.max_request_bytes).toBeGreaterThan(0);
      expect(ea.with_request_body.max_request_bytes).toBeLessThanOrEqual(64 * 1024);
      expect(ea.with_request_body.allow_partial_message).toBe(true);
    }
  });

  it('normalises paths before the check, so dot segments cannot dodge a path policy', () => {
    for (const hcm of managers) {
      expect(hcm.normalize_path).toBe(true);
      expect(hcm.merge_slashes).toBe(true);
    }
  });

  it('gives every route an ExtAuthzPerRoute that names its service or disables the check', () => {
    for (const hcm of managers) {
      const routes = routesOf(hcm);
      expect(routes.length).toBeGreaterThan(0);
      for (const route of routes) {
        const pr = perRoute(route);
        const where = `${hcm.stat_prefix} ${matchKey(route)}`;
        expect(pr?.['@type'], where).toBe(T.perRoute);
        if (pr.disabled !== undefined) {
          expect(pr.disabled, where).toBe(true);
          expect(pr.check_settings, `${where}: disabled and check_settings are a oneof`).toBeUndefined();
          continue;
        }
        const ext = pr.check_settings?.context_extensions ?? {};
        expect(ext.service, where).toMatch(/^[a-z][a-z0-9-]*$/);
        if ('fail_mode' in ext) expect(['open', 'closed'], where).toContain(ext.fail_mode);
        if ('enforcement' in ext) expect(ext.enforcement, where).toBe('dry-run');
        for (const v of Object.values(ext)) expect(typeof v, `${where}: context_extensions are strings`).toBe('string');
      }
    }
  });

  it.each([
    { match: '/healthz', service: null },
    { match: '/orders', service: 'orders' },
    { match: '/payments', service: 'payments' },
    { match: '/', service: 'frontend' },
  ])('routes $match to the echo upstream with service=$service', ({ match, service }) => {
    for (const hcm of managers) {
      const route = routesOf(hcm).find((r) => matchKey(r) === match);
      expect(route, `${hcm.stat_prefix}: route ${match}`).toBeDefined();
      expect(route.route.cluster).toBe('echo');
      if (service === null) expect(perRoute(route).disabled).toBe(true);
      else expect(perRoute(route).check_settings.context_extensions.service).toBe(service);
    }
  });

  it('matches /healthz before the catch-all, so the health route really skips the check', () => {
    for (const hcm of managers) {
      const order = routesOf(hcm).map(matchKey);
      expect(order.indexOf('/healthz')).toBeLessThan(order.indexOf('/'));
      expect(order.at(-1)).toBe('/');
    }
  });

  it('has an echo upstream cluster', () => {
    expect(endpoints(cluster(cfg, 'echo')).length).toBe(1);
  });
});

describe('envoy/envoy-ratelimit.yaml (exact global limits from our descriptors)', () => {
  const cfg = ENVOY_FILES.find((e) => e.file === 'envoy/envoy-ratelimit.yaml')!.cfg;
  const hcm = hcms(cfg)[0];
  it('the rate-limit filter runs after ext_authz (it reads the metadata ext_authz set) and before the router', () => {
    expect(hcm.http_filters.map((f: Json) => f.name)).toEqual([
      'envoy.filters.http.ext_authz',
      'envoy.filters.http.ratelimit',
      'envoy.filters.http.router',
    ]);
  });
  it('descriptors: principal_type and mode from ext_authz dynamic metadata (keys our CheckResponse sets), and the client address', () => {
    const actions = hcm.route_config.virtual_hosts[0].rate_limits[0].actions;
    const meta = actions.filter((a: Json) => a.metadata).map((a: Json) => a.metadata);
    expect(meta.map((m: Json) => [m.descriptor_key, m.metadata_key.key, m.metadata_key.path[0].key, m.source])).toEqual(
      [
        ['principal_type', EXT_AUTHZ_HTTP_FILTER, 'principal_type', 'DYNAMIC'],
        ['mode', EXT_AUTHZ_HTTP_FILTER, 'mode', 'DYNAMIC'],
      ],
    );
    expect(actions.some((a: Json) => 'remote_address' in a)).toBe(true);
  });
  it("the rate-limit service's config has the example bundle's anonymous limits per mode, 80% lower in high-alert", () => {
    const rl = loadYaml('envoy/ratelimit/authz.yaml');
    expect(rl.domain).toBe(hcm.http_filters[1].typed_config.domain);
    const modes = rl.descriptors.find((d: Json) => d.key === 'principal_type' && d.value === 'Anonymous').descriptors;
    const rate = (mode: string) =>
      modes.find((d: Json) => d.value === mode).descriptors[0].rate_limit.requests_per_unit;
    expect(rate('normal')).toBe(50);
    expect(rate('high-alert')).toBe(10);
  });
});

describe('envoy/envoy-tcp.yaml (network filter)', () => {
  const cfg = ENVOY_FILES.find((e) => e.file === 'envoy/envoy-tcp.yaml')!.cfg;

  it('runs the network ext_authz filter before the terminal tcp_proxy', () => {
    const chains = networkFilters(cfg);
    expect(chains.length).toBeGreaterThan(0);
    for (const filters of chains) {
      const types = filters.map((f: Json) => f.typed_config?.['@type']);
      expect(types).toContain(T.netExtAuthz);
      expect(types.filter((t: string) => t === T.tcpProxy)).toHaveLength(1);
      expect(types.at(-1)).toBe(T.tcpProxy);
      expect(types.indexOf(T.netExtAuthz)).toBeLessThan(types.indexOf(T.tcpProxy));
      const ea = filters.find((f: Json) => f.typed_config?.['@type'] === T.netExtAuthz);
      expect(ea.name).toBe('envoy.filters.network.ext_authz');
      expect(ea.typed_config.stat_prefix).toMatch(/\S/);
    }
  });
});

// ---------------------------------------------------------------- compose

describe('docker-compose.yml', () => {
  const compose = loadYaml('docker-compose.yml');
  const svc = compose.services;
  const envoyCfg = ENVOY_FILES.find((e) => e.file === 'envoy/envoy.yaml')!.cfg;
  const authzEnv: Record<string, string> = svc.authz.environment;
  const bundleInitScript: string = [svc['bundle-init'].command].flat().join('\n');

  /** Container ports published by a service ("host:container" strings). */
  const published = (s: Json): number[] => (s.ports ?? []).map((p: string) => Number(String(p).split(':').at(-1)));
  const flag = (script: string, name: string): string | undefined =>
    new RegExp(`--${name}[ =](\\S+)`).exec(script)?.[1];

  it('defines the demo services', () => {
    for (const name of ['envoy', 'authz', 'minio', 'bundle-init', 'echo']) expect(Object.keys(svc)).toContain(name);
  });

  it('only sets AUTHZ_* variables the server knows', () => {
    for (const s of Object.values(svc) as Json[]) {
      for (const key of Object.keys(s.environment ?? {})) {
        if (key.startsWith('AUTHZ_')) expect(AUTHZ_ENV_VARS, key).toContain(key);
      }
    }
  });

  it('starts Envoy only after the authz server is healthy, and the server after the bundle exists', () => {
    expect(svc.envoy.depends_on.authz.condition).toBe('service_healthy');
    expect(svc.authz.depends_on.minio.condition).toBe('service_healthy');
    expect(svc.authz.depends_on['bundle-init'].condition).toBe('service_completed_successfully');
    expect(svc['bundle-init'].depends_on.minio.condition).toBe('service_healthy');
    expect(svc.minio.healthcheck.test).toBeDefined();
    for (const [dep, cond] of Object.entries(svc.envoy.depends_on) as [string, Json][]) {
      expect(Object.keys(svc), `envoy depends on ${dep}`).toContain(dep);
      expect(['service_started', 'service_healthy', 'service_completed_successfully']).toContain(cond.condition);
      if (cond.condition === 'service_healthy')
        expect(svc[dep].healthcheck, `${dep} needs a healthcheck`).toBeDefined();
    }
  });

  it('runs a pinned current Envoy with envoy/envoy.yaml mounted, and publishes every listener and the admin port', () => {
    expect(svc.envoy.image).toMatch(/^envoyproxy\/envoy:v1\.3\d(\.\d+|-latest)$/);
    const mount = (svc.envoy.volumes as string[]).find((v) => v.split(':')[1] === '/etc/envoy/envoy.yaml');
    expect(mount, 'envoy.yaml mount').toBeDefined();
    const source = mount!.split(':')[0]!;
    expect(path.normalize(source)).toBe(path.normalize('./envoy/envoy.yaml'));
    expect(existsSync(path.join(ROOT, source))).toBe(true);
    const ports = published(svc.envoy);
    for (const l of listeners(envoyCfg)) expect(ports).toContain(l.address.socket_address.port_value);
    expect(ports).toContain(envoyCfg.admin.address.socket_address.port_value);
    expect(ports).toEqual(expect.arrayContaining([8080, 9901]));
  });

  it("mounts the TLS files Envoy's listeners read", () => {
    const files: string[] = [];
    walk(envoyCfg, (obj) => {
      if (typeof obj.filename === 'string') files.push(obj.filename);
    });
    const mountTargets = (svc.envoy.volumes as string[]).map((v) => v.split(':')[1]!);
    for (const f of files)
      expect(
        mountTargets.some((t) => f.startsWith(`${t}/`)),
        f,
      ).toBe(true);
  });

  it("Envoy's authz cluster points at the authz service on the port it listens on", () => {
    const listen = hostPort(authzEnv.AUTHZ_LISTEN!);
    expect(listen.port).toBe(SERVER_GRPC_PORT);
    const eps = endpoints(cluster(envoyCfg, 'authz'));
    for (const ep of eps) expect(ep).toEqual({ address: 'authz', port: listen.port });
  });

  it("Envoy's echo cluster points at the echo service on the port it listens on", () => {
    const args = [svc.echo.command].flat().join(' ');
    const port = Number(/-listen=:?(\d+)/.exec(args)?.[1]);
    for (const ep of endpoints(cluster(envoyCfg, 'echo'))) expect(ep).toEqual({ address: 'echo', port });
  });

  it('pushes changes over the nats service (JetStream on) to the servers and from the CLI job, without making authz wait for it', () => {
    expect(svc.nats.image).toMatch(/^nats:2(\.|$)/);
    expect([svc.nats.command].flat()).toContain('-js');
    for (const env of [authzEnv, svc['bundle-init'].environment as Record<string, string>]) {
      const url = new URL(env.AUTHZ_NOTIFY!);
      expect(url.protocol).toBe('nats:');
      expect(url.hostname).toBe('nats');
      expect(Number(url.port)).toBe(4222);
    }
    expect(svc.authz.depends_on.nats.condition).toBe('service_started');
  });

  it('builds authz from the repo Dockerfile and reads bundles from MinIO', () => {
    expect(svc.authz.build === '.' || svc.authz.build?.context === '.').toBe(true);
    const s3 = new URL(authzEnv.AUTHZ_S3_ENDPOINT!);
    expect(s3.hostname).toBe('minio');
    expect(Number(s3.port)).toBe(9000); // MinIO's default API port for `server /data`
    expect([svc.minio.command].flat().join(' ')).toMatch(/server \/data/);
    expect(svc.minio.image).toMatch(/^minio\/minio(:|$)/);
    for (const key of ['AUTHZ_BUCKET', 'AUTHZ_BUNDLE', 'AUTHZ_STATE_DIR', 'AUTHZ_POLL_INTERVAL']) {
      expect(authzEnv[key], key).toMatch(/\S/);
    }
    expect(authzEnv.AWS_ACCESS_KEY_ID).toBe(svc.minio.environment.MINIO_ROOT_USER);
    expect(authzEnv.AWS_SECRET_ACCESS_KEY).toBe(svc.minio.environment.MINIO_ROOT_PASSWORD);
    expect(authzEnv.AWS_REGION).toMatch(/\S/);
    expect(['closed', 'open']).toContain(authzEnv.AUTHZ_FAIL_MODE);
  });

  it('keeps the last-good bundle on a volume', () => {
    const targets = (svc.authz.volumes as string[]).map((v) => v.split(':')[1]);
    expect(targets).toContain(authzEnv.AUTHZ_STATE_DIR);
  });

  it('binds the admin port for the other containers but publishes it on the host loopback only', () => {
    expect(authzEnv.AUTHZ_ADMIN).toBe(CONTAINER_ADMIN);
    const adminPorts = (svc.authz.ports as string[]).filter((p) => String(p).endsWith(`:${SERVER_ADMIN_PORT}`));
    expect(adminPorts.length).toBeGreaterThan(0);
    for (const p of adminPorts) expect(String(p)).toMatch(new RegExp(`^127\\.0\\.0\\.1:\\d+:${SERVER_ADMIN_PORT}$`));
    // The gRPC port is for Envoy on the compose network, never the host.
    expect(published(svc.authz)).not.toContain(SERVER_GRPC_PORT);
  });

  it('calls authz healthy only when /readyz on its admin port answers', () => {
    const test = [svc.authz.healthcheck.test].flat().join(' ');
    const admin = hostPort(authzEnv.AUTHZ_ADMIN!);
    expect(admin.port).toBe(SERVER_ADMIN_PORT);
    expect(test).toContain(`:${admin.port}/readyz`);
  });

  it('bundle-init creates the bucket, then pushes and activates v1 into the store authz reads', () => {
    const init = svc['bundle-init'];
    expect(init.image).toBe(svc.authz.image);
    expect(bundleInitScript).toContain('CreateBucketCommand');
    const push = bundleInitScript.indexOf('bundle push policies --version v1');
    const activate = bundleInitScript.indexOf('bundle activate v1');
    expect(bundleInitScript.indexOf('CreateBucketCommand')).toBeLessThan(push);
    expect(push).toBeGreaterThan(0);
    expect(activate).toBeGreaterThan(push);
    for (const cmd of [bundleInitScript.slice(push), bundleInitScript.slice(activate)]) {
      const line = cmd.split('\n')[0]! + (cmd.split('\n')[0]!.trimEnd().endsWith('\\') ? cmd.split('\n')[1] : '');
      expect(flag(line, 's3-endpoint')).toBe(authzEnv.AUTHZ_S3_ENDPOINT);
      expect(flag(line, 'bucket')).toBe(authzEnv.AUTHZ_BUCKET);
      expect(flag(line, 'bundle')).toBe(authzEnv.AUTHZ_BUNDLE);
    }
    expect(init.environment.AUTHZ_BUCKET).toBe(authzEnv.AUTHZ_BUCKET);
    expect(init.environment.AWS_ACCESS_KEY_ID).toBe(authzEnv.AWS_ACCESS_KEY_ID);
    expect(init.environment.AWS_SECRET_ACCESS_KEY).toBe(authzEnv.AWS_SECRET_ACCESS_KEY);
    // `docker compose run --rm bundle-init node dist/cli/main.js ...` must run as written.
    expect(init.entrypoint).toEqual(['docker-entrypoint.sh']);
  });

  it('escapes every $ meant for the shell, so compose does not interpolate it away', () => {
    const scripts = Object.values(svc).flatMap((s: Json) =>
      [s.command, s.entrypoint].flat().filter((x) => typeof x === 'string'),
    );
    for (const script of scripts as string[]) {
      // After removing "$$" (a literal $), any "$" left is compose interpolation.
      expect(script.replace(/\$\$/g, ''), script.slice(0, 60)).not.toMatch(/\$/);
    }
  });
});

// ------------------------------------------------------------- Dockerfile

describe('Dockerfile', () => {
  // Join continuation lines, drop comments, split into [instruction, args].
  const instructions = read('Dockerfile')
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const i = l.search(/\s/);
      return { op: l.slice(0, i).toUpperCase(), args: l.slice(i + 1).trim() };
    });
  const stages: { from: string; body: { op: string; args: string }[] }[] = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') stages.push({ from: ins.args, body: [] });
    else stages.at(-1)?.body.push(ins);
  }
  const runtime = stages.at(-1)!;
  const inRuntime = (op: string) => runtime.body.filter((i) => i.op === op).map((i) => i.args);

  it('is multi-stage: a node:20-bookworm-slim build stage and a runtime stage', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(stages[0]!.from).toMatch(/^node:20-bookworm-slim AS build$/i);
    expect(runtime.from).toMatch(/^node:20-bookworm-slim\b/);
    const build = stages[0]!.body.map((i) => `${i.op} ${i.args}`).join('\n');
    expect(build).toMatch(/npm ci/);
    expect(build).toMatch(/npm run build|tsc/);
  });

  it('ships only production dependencies, the compiled output, protos and policies', () => {
    expect(inRuntime('RUN').join('\n')).toMatch(/npm ci --omit=dev --ignore-scripts/);
    const copies = inRuntime('COPY');
    expect(copies).toContainEqual(expect.stringMatching(/^--from=build \/app\/dist \.\/dist$/));
    expect(copies).toContainEqual(expect.stringMatching(/^protos /));
    expect(copies).toContainEqual(expect.stringMatching(/^policies /));
  });

  it('runs as a non-root user', () => {
    const user = inRuntime('USER').at(-1);
    expect(user).toBeDefined();
    expect(['root', '0', '0:0']).not.toContain(user);
  });

  it('binds the admin port on all interfaces (the server defaults to loopback) so probes from outside reach it', () => {
    const env = inRuntime('ENV').join(' ');
    expect(env).toMatch(new RegExp(`\\bAUTHZ_ADMIN=${CONTAINER_ADMIN.replace(/\./g, '\\.')}\\b`));
  });

  it('exposes both server ports and health-checks the admin /healthz with node', () => {
    expect(inRuntime('EXPOSE').join(' ').split(/\s+/).map(Number)).toEqual(
      expect.arrayContaining([SERVER_GRPC_PORT, SERVER_ADMIN_PORT]),
    );
    const hc = inRuntime('HEALTHCHECK').join(' ');
    expect(hc).toContain(`127.0.0.1:${SERVER_ADMIN_PORT}/healthz`);
    expect(hc).toMatch(/CMD \["node"/);
  });

  it('starts the CLI the way package.json does', () => {
    const entry = JSON.parse(inRuntime('ENTRYPOINT').at(-1)!) as string[];
    const cmd = JSON.parse(inRuntime('CMD').at(-1)!) as string[];
    expect(entry).toEqual(['node', 'dist/cli/main.js']);
    expect(cmd).toEqual(['serve']);
    const pkg = JSON.parse(read('package.json'));
    expect(pkg.scripts.start).toBe([...entry, ...cmd].join(' '));
  });

  it('.dockerignore keeps local state out of the build context', () => {
    const ignored = read('.dockerignore')
      .split(/\r?\n/)
      .map((l) => l.trim());
    for (const p of ['node_modules', 'dist', '.git', '.state', '.dev-store', 'bench/results'])
      expect(ignored).toContain(p);
  });
});

// ------------------------------------------------------------------ Istio

describe('envoy/istio', () => {
  const files = (readdirSync(path.join(ROOT, 'envoy/istio'), { recursive: true }) as string[])
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.split(path.sep).join('/'));
  const isKustomization = (f: string) => path.basename(f) === 'kustomization.yaml';
  const docsByFile = new Map(
    files.filter((f) => !isKustomization(f)).map((f) => [f, loadYamlDocs(`envoy/istio/${f}`)]),
  );
  const all = [...docsByFile.values()].flat();
  const ofKind = (docs: Json[], kind: string): Json[] => docs.filter((d) => d.kind === kind);
  const providers: Json[] = all
    .filter((d) => d.kind === 'IstioOperator')
    .flatMap((d) => d.spec.meshConfig.extensionProviders ?? []);
  const provider = (name: string): Json => providers.find((p) => p.name === name);

  const deployDocs = docsByFile.get('deployment.yaml')!;
  const deployment = ofKind(deployDocs, 'Deployment')[0];
  const service = ofKind(deployDocs, 'Service')[0];
  const podSpec = deployment.spec.template.spec;
  const authzContainer = podSpec.containers.find((c: Json) =>
    (c.env ?? []).some((e: Json) => e.name === 'AUTHZ_LISTEN'),
  );
  const env = (c: Json, name: string): string | undefined => c.env?.find((e: Json) => e.name === name)?.value;
  /** A probe's port, resolving container port names. */
  const probePort = (c: Json, port: number | string): number =>
    typeof port === 'number' ? port : c.ports.find((p: Json) => p.name === port)?.containerPort;

  it('ships the expected files, each document a named Kubernetes object', () => {
    expect(files.sort()).toEqual([
      'authorization-policy.yaml',
      'deployment.yaml',
      'image/kustomization.yaml',
      'kustomization.yaml',
      'mesh-config.yaml',
      'sidecar/kustomization.yaml',
      'sidecar/workload.yaml',
    ]);
    for (const d of all) {
      expect(d.apiVersion, JSON.stringify(d).slice(0, 80)).toMatch(/\S/);
      expect(d.kind).toMatch(/\S/);
      expect(d.metadata?.name).toMatch(/\S/);
    }
  });

  it('declares the cedar-authz gRPC provider pointing at the Service', () => {
    const p = provider('cedar-authz');
    expect(p, 'extensionProviders entry cedar-authz').toBeDefined();
    const grpc = p.envoyExtAuthzGrpc;
    expect(grpc.service).toBe(`${service.metadata.name}.${service.metadata.namespace}.svc.cluster.local`);
    expect(grpc.service).toBe('cedar-authz.authz-system.svc.cluster.local');
    expect(durationMs(grpc.timeout)).toBeLessThan(ENVOY_DEFAULT_EXT_AUTHZ_TIMEOUT_MS);
    expect(grpc.failOpen).toBe(false);
    expect(grpc.statusOnError).toMatch(/^[1-5]\d\d$/); // a string in Istio's API
  });

  it("the provider's port is the Service's grpc port, which reaches the container's gRPC listener", () => {
    const grpc = provider('cedar-authz').envoyExtAuthzGrpc;
    const port = service.spec.ports.find((p: Json) => p.port === grpc.port);
    expect(port, `Service port ${grpc.port}`).toBeDefined();
    expect(port.name).toMatch(/^grpc/); // Istio protocol selection: HTTP/2
    const target = probePort(authzContainer, port.targetPort ?? port.port);
    expect(target).toBe(hostPort(env(authzContainer, 'AUTHZ_LISTEN')!).port);
    expect(target).toBe(SERVER_GRPC_PORT);
    expect(authzContainer.ports.find((p: Json) => p.containerPort === target).name).toBe('grpc');
  });

  it('every CUSTOM AuthorizationPolicy names a declared provider and selects workloads', () => {
    const policies = ofKind(all, 'AuthorizationPolicy').filter((p) => p.spec.action === 'CUSTOM');
    expect(policies.length).toBeGreaterThanOrEqual(2);
    for (const p of policies) {
      expect(p.apiVersion).toBe('security.istio.io/v1');
      expect(provider(p.spec.provider.name), `provider ${p.spec.provider.name}`).toBeDefined();
      expect(Object.keys(p.spec.selector.matchLabels).length).toBeGreaterThan(0);
      expect(p.spec.rules.length).toBeGreaterThan(0);
    }
    const main = ofKind(docsByFile.get('authorization-policy.yaml')!, 'AuthorizationPolicy')[0];
    expect(main.spec.provider.name).toBe('cedar-authz');
  });

  it("the CUSTOM policy does not select the authz server's own pods", () => {
    const selector: Record<string, string> = ofKind(
      docsByFile.get('authorization-policy.yaml')!,
      'AuthorizationPolicy',
    )[0].spec.selector.matchLabels;
    const labels = deployment.spec.template.metadata.labels;
    expect(Object.entries(selector).every(([k, v]) => labels[k] === v)).toBe(false);
  });

  it('runs at least two replicas with probes on the admin port: readiness /readyz, liveness /healthz', () => {
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    const admin = hostPort(env(authzContainer, 'AUTHZ_ADMIN')!).port;
    expect(admin).toBe(SERVER_ADMIN_PORT);
    const { readinessProbe: ready, livenessProbe: live } = authzContainer;
    expect(ready.httpGet.path).toBe('/readyz');
    expect(probePort(authzContainer, ready.httpGet.port)).toBe(admin);
    expect(live.httpGet.path).toBe('/healthz');
    expect(probePort(authzContainer, live.httpGet.port)).toBe(admin);
    expect(authzContainer.ports.find((p: Json) => p.containerPort === admin).name).toBe('http-admin');
  });

  it('binds the admin port on all interfaces for kubelet probes and Prometheus', () => {
    expect(env(authzContainer, 'AUTHZ_ADMIN')).toBe(CONTAINER_ADMIN);
  });

  it('admits only mesh mTLS callers to the gRPC port, and only the monitoring namespace to the admin port', () => {
    const labels = deployment.spec.template.metadata.labels;
    const selects = (sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);
    const peer = ofKind(deployDocs, 'PeerAuthentication')[0];
    expect(peer.apiVersion).toBe('security.istio.io/v1');
    expect(selects(peer.spec.selector.matchLabels)).toBe(true);
    expect(peer.spec.mtls.mode).toBe('STRICT');

    const allow = ofKind(deployDocs, 'AuthorizationPolicy').find((p) => p.spec.action === 'ALLOW');
    expect(allow, 'ALLOW policy on the server').toBeDefined();
    expect(selects(allow.spec.selector.matchLabels)).toBe(true);
    for (const rule of allow.spec.rules) {
      expect(
        rule.from.flatMap((f: Json) => f.source.principals ?? []).length,
        'callers named by principal',
      ).toBeGreaterThan(0);
      expect(rule.to.flatMap((t: Json) => t.operation.ports)).toEqual([String(SERVER_GRPC_PORT)]);
    }

    const np = ofKind(deployDocs, 'NetworkPolicy')[0];
    expect(np.apiVersion).toBe('networking.k8s.io/v1');
    expect(selects(np.spec.podSelector.matchLabels)).toBe(true);
    expect(np.spec.policyTypes).toEqual(['Ingress']);
    const rulesFor = (port: number) => np.spec.ingress.filter((r: Json) => r.ports.some((p: Json) => p.port === port));
    expect(rulesFor(SERVER_GRPC_PORT).length).toBeGreaterThan(0);
    const adminRules = rulesFor(SERVER_ADMIN_PORT);
    expect(adminRules.length).toBeGreaterThan(0);
    for (const r of adminRules)
      expect(r.from?.length, 'the admin port is open only to named sources').toBeGreaterThan(0);
    // The mesh-facing Service carries the gRPC port only: the admin port is never reachable by its name.
    expect(service.spec.ports.map((p: Json) => p.port)).toEqual([SERVER_GRPC_PORT]);
    for (const svc of ofKind(all, 'Service')) {
      for (const p of svc.spec.ports) {
        expect(p.port, `${svc.metadata.name} port ${p.name}`).not.toBe(SERVER_ADMIN_PORT);
        expect(p.targetPort, `${svc.metadata.name} port ${p.name}`).not.toBe('http-admin');
      }
    }
  });

  it('runs non-root on a read-only root filesystem, with the state dir on an emptyDir', () => {
    expect(podSpec.securityContext.runAsNonRoot).toBe(true);
    expect(podSpec.securityContext.runAsUser).toBeGreaterThan(0);
    expect(authzContainer.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(authzContainer.securityContext.allowPrivilegeEscalation).toBe(false);
    const stateDir = env(authzContainer, 'AUTHZ_STATE_DIR');
    const mount = authzContainer.volumeMounts.find((m: Json) => m.mountPath === stateDir);
    expect(mount, `mount for ${stateDir}`).toBeDefined();
    expect(podSpec.volumes.find((v: Json) => v.name === mount.name).emptyDir).toBeDefined();
    expect(authzContainer.resources.requests.cpu).toBeDefined();
    expect(authzContainer.resources.requests.memory).toBeDefined();
  });

  it('the Service and the PodDisruptionBudget select exactly the Deployment pods', () => {
    const labels = deployment.spec.template.metadata.labels;
    const matches = (sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);
    expect(matches(deployment.spec.selector.matchLabels)).toBe(true);
    expect(matches(service.spec.selector)).toBe(true);
    const pdb = ofKind(deployDocs, 'PodDisruptionBudget')[0];
    expect(pdb.apiVersion).toBe('policy/v1');
    expect(pdb.spec.minAvailable).toBe(1);
    expect(pdb.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
    expect(pdb.spec.minAvailable).toBeLessThan(deployment.spec.replicas);
  });

  it('keeps every namespaced object of the shared service in authz-system', () => {
    expect(ofKind(deployDocs, 'Namespace')[0].metadata.name).toBe('authz-system');
    for (const d of deployDocs.filter((x) => x.kind !== 'Namespace'))
      expect(d.metadata.namespace, d.kind).toBe('authz-system');
    expect(podSpec.serviceAccountName).toBe(ofKind(deployDocs, 'ServiceAccount')[0].metadata.name);
  });

  it('only sets AUTHZ_* variables the server knows', () => {
    for (const d of ofKind(all, 'Deployment')) {
      for (const c of d.spec.template.spec.containers) {
        for (const e of c.env ?? []) if (e.name.startsWith('AUTHZ_')) expect(AUTHZ_ENV_VARS, e.name).toContain(e.name);
      }
    }
  });

  describe('what kubectl and what istioctl read', () => {
    /** A kustomization's own resources and its components' (kustomize's default load restrictions: files under its root). */
    function kustomize(dir: string): { files: string[]; images: Json[] } {
      const k = loadYaml(`envoy/istio/${dir ? `${dir}/` : ''}kustomization.yaml`);
      const files: string[] = [];
      const images: Json[] = [...(k.images ?? [])];
      for (const r of k.resources ?? []) {
        expect(r, `${dir}: resource ${r} stays under the kustomization's root`).not.toMatch(/^\.\.|^\//);
        files.push(path.posix.join(dir, r));
      }
      for (const c of k.components ?? []) {
        const cdir = path.posix.normalize(path.posix.join(dir, c));
        const comp = loadYaml(`envoy/istio/${cdir}/kustomization.yaml`);
        expect(comp.kind).toBe('Component');
        const inner = kustomize(cdir);
        files.push(...inner.files);
        images.push(...inner.images);
      }
      for (const f of files) expect(existsSync(path.join(ROOT, 'envoy/istio', f)), f).toBe(true);
      return { files, images };
    }
    const variants = { shared: kustomize(''), sidecar: kustomize('sidecar') };
    const pkgVersion: string = JSON.parse(read('package.json')).version;

    it.each(Object.entries(variants))(
      'the %s variant applies with kubectl alone: no IstioOperator among its resources',
      (_name, v) => {
        expect(v.files.length).toBeGreaterThan(0);
        for (const f of v.files) {
          const kinds = docsByFile.get(f)!.map((d) => d.kind);
          expect(kinds, f).not.toContain('IstioOperator');
          expect(kinds.length, f).toBeGreaterThan(0);
        }
      },
    );

    it('IstioOperator lives only in mesh-config.yaml, which no kustomization lists, and it declares every provider', () => {
      for (const [f, docs] of docsByFile) {
        if (docs.some((d) => d.kind === 'IstioOperator')) expect(f).toBe('mesh-config.yaml');
      }
      expect(docsByFile.get('mesh-config.yaml')!.map((d) => d.kind)).toEqual(['IstioOperator']);
      for (const v of Object.values(variants)) expect(v.files).not.toContain('mesh-config.yaml');
      expect(providers.map((p) => p.name).sort()).toEqual(['cedar-authz', 'cedar-authz-http', 'cedar-authz-local']);
    });

    it('the image tag is written once, in the image component, with the command that builds it from the Dockerfile', () => {
      const component = loadYaml('envoy/istio/image/kustomization.yaml');
      expect(component.images).toHaveLength(1);
      const [image] = component.images;
      expect(image.newTag).toBe(pkgVersion);
      for (const v of Object.values(variants)) expect(v.images).toEqual([image]);
      const authzImages = ofKind(all, 'Deployment')
        .flatMap((d) => d.spec.template.spec.containers)
        .filter((c: Json) => env(c, 'AUTHZ_LISTEN'))
        .map((c: Json) => c.image);
      expect(authzImages).toEqual([image.name, image.name]); // kustomize sets name and tag
      const build = `docker build -t ${image.name}:${image.newTag} .`;
      expect(read('envoy/istio/image/kustomization.yaml')).toContain(build);
      expect(read('envoy/istio/README.md')).toContain(build);
    });

    it('no placeholder image is left in the deployment files or guides', () => {
      for (const f of [
        ...files.map((x) => `envoy/istio/${x}`),
        'envoy/istio/README.md',
        'README.md',
        'docker-compose.yml',
      ]) {
        expect(read(f), f).not.toMatch(/your-org/);
      }
    });

    it('the guide gives one apply command per variant, and the files name the same', () => {
      const guide = read('envoy/istio/README.md');
      expect(guide).toContain('kubectl apply -k envoy/istio\n');
      expect(guide).toContain('kubectl apply -k envoy/istio/sidecar\n');
      expect(guide).toContain('istioctl install -f envoy/istio/mesh-config.yaml');
      expect(guide).not.toMatch(/kubectl apply -f envoy\/istio\/(mesh-config|sidecar)/);
      expect(read('envoy/istio/deployment.yaml')).toContain('kubectl apply -k envoy/istio ');
      expect(read('envoy/istio/sidecar/workload.yaml')).toContain('kubectl apply -k envoy/istio/sidecar\n');
    });

    it('both variants give the server a startup probe on /healthz (served from process start)', () => {
      const servers = ofKind(all, 'Deployment')
        .flatMap((d) => d.spec.template.spec.containers)
        .filter((c: Json) => env(c, 'AUTHZ_LISTEN'));
      expect(servers).toHaveLength(2);
      for (const c of servers) {
        expect(c.startupProbe?.httpGet?.path, c.name).toBe('/healthz');
        expect(probePort(c, c.startupProbe.httpGet.port)).toBe(hostPort(env(c, 'AUTHZ_ADMIN')!).port);
      }
    });
  });

  describe('sidecar variant', () => {
    const docs = docsByFile.get('sidecar/workload.yaml')!;
    const policy = ofKind(docs, 'AuthorizationPolicy')[0];
    const p = provider(policy.spec.provider.name).envoyExtAuthzGrpc;
    const entry = ofKind(docs, 'ServiceEntry')[0];
    const workload = ofKind(docs, 'Deployment')[0];
    const sidecar = workload.spec.template.spec.containers.find((c: Json) => env(c, 'AUTHZ_LISTEN'));

    it('registers 127.0.0.1 under the provider name and port with a STATIC ServiceEntry', () => {
      expect(entry.spec.hosts).toContain(p.service);
      expect(entry.spec.endpoints.map((e: Json) => e.address)).toEqual(['127.0.0.1']);
      expect(entry.spec.resolution).toBe('STATIC');
      const port = entry.spec.ports.find((x: Json) => x.number === p.port);
      expect(port, `ServiceEntry port ${p.port}`).toBeDefined();
      expect(port.protocol).toBe('GRPC');
      expect(port.name).toMatch(/^grpc/);
      expect(p.failOpen).toBe(false);
      expect(durationMs(p.timeout)).toBeLessThan(ENVOY_DEFAULT_EXT_AUTHZ_TIMEOUT_MS);
    });

    it('the server container listens on loopback at the provider port', () => {
      expect(sidecar, 'authz container in the workload pod').toBeDefined();
      expect(hostPort(env(sidecar, 'AUTHZ_LISTEN')!)).toEqual({ host: '127.0.0.1', port: p.port });
      expect(sidecar.readinessProbe.httpGet.path).toBe('/readyz');
      expect(sidecar.livenessProbe.httpGet.path).toBe('/healthz');
      const admin = hostPort(env(sidecar, 'AUTHZ_ADMIN')!).port;
      expect(probePort(sidecar, sidecar.readinessProbe.httpGet.port)).toBe(admin);
      expect(probePort(sidecar, sidecar.livenessProbe.httpGet.port)).toBe(admin);
    });

    it('other workloads are refused on the admin port by a DENY policy on the same pods', () => {
      const admin = String(hostPort(env(sidecar, 'AUTHZ_ADMIN')!).port);
      const deny = ofKind(docs, 'AuthorizationPolicy').find((x) => x.spec.action === 'DENY');
      expect(deny, 'DENY policy in the sidecar variant').toBeDefined();
      const labels = workload.spec.template.metadata.labels;
      expect(Object.entries(deny.spec.selector.matchLabels).every(([k, v]) => labels[k] === v)).toBe(true);
      // Unconditional: no `from`, no `when`, every rule names only the admin port.
      expect(deny.spec.rules).toHaveLength(1);
      expect(deny.spec.rules[0].from).toBeUndefined();
      expect(deny.spec.rules[0].when).toBeUndefined();
      expect(deny.spec.rules[0].to.flatMap((t: Json) => t.operation.ports)).toEqual([admin]);
      expect(deny.metadata.namespace).toBe(workload.metadata.namespace);
    });

    it('the policy selects the pod that carries the server', () => {
      const labels = workload.spec.template.metadata.labels;
      expect(Object.entries(policy.spec.selector.matchLabels).every(([k, v]) => labels[k] === v)).toBe(true);
    });
  });
});

// ---------------------------------------------------------------- Grafana

describe('deploy/grafana-dashboard.json', () => {
  const dash = JSON.parse(read('deploy/grafana-dashboard.json'));
  const panels: Json[] = dash.panels.flatMap((p: Json) => [p, ...(p.panels ?? [])]);
  const queryPanels = panels.filter((p) => p.type !== 'row');
  const exprs: string[] = queryPanels.flatMap((p) => (p.targets ?? []).map((t: Json) => t.expr));

  const PROMQL_WORDS = new Set([
    'sum',
    'rate',
    'irate',
    'increase',
    'histogram_quantile',
    'time',
    'count',
    'max',
    'min',
    'avg',
    'by',
    'without',
    'on',
    'ignoring',
    'group_left',
    'group_right',
    'clamp_min',
    'clamp_max',
    'topk',
    'bool',
    'and',
    'or',
    'unless',
    'le',
  ]);
  /** Metric names in a PromQL expression: identifiers outside {…}, […] and strings that are not PromQL words. */
  function metricNames(expr: string): string[] {
    const bare = expr
      .replace(/"(?:[^"\\]|\\.)*"/g, '""')
      .replace(/\{[^}]*\}/g, ' ')
      .replace(/\[[^\]]*\]/g, ' ');
    const grouping = /\b(?:by|without|on|ignoring)\s*\(([^)]*)\)/g; // label lists, not metrics
    const withoutLabels = bare.replace(grouping, ' ');
    return (withoutLabels.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? []).filter((w) => !PROMQL_WORDS.has(w));
  }
  const baseMetric = (name: string) => {
    const m = /^(.*)_(bucket|sum|count)$/.exec(name);
    return m && HISTOGRAMS.has(m[1]!) ? m[1]! : name;
  };

  it('is a current-schema dashboard with a Prometheus datasource variable', () => {
    expect(dash.schemaVersion).toBeGreaterThanOrEqual(36);
    const ds = dash.templating.list.find((v: Json) => v.type === 'datasource');
    expect(ds.query).toBe('prometheus');
    for (const p of queryPanels) {
      expect(p.datasource.uid, p.title).toBe(`\${${ds.name}}`);
      for (const t of p.targets) expect(t.datasource?.uid ?? p.datasource.uid).toBe(`\${${ds.name}}`);
    }
  });

  it('has unique panel ids and layout for every panel', () => {
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) {
      expect(p.gridPos.w, p.title).toBeGreaterThan(0);
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
    }
  });

  it('every query names only metrics the server exports', () => {
    expect(exprs.length).toBeGreaterThan(0);
    for (const expr of exprs) {
      const names = metricNames(expr);
      expect(names.length, expr).toBeGreaterThan(0);
      for (const n of names) expect(EXPORTED_METRICS, `${n} in ${expr}`).toContain(baseMetric(n));
    }
  });

  it('the metric-name check catches a misspelled metric', () => {
    expect(metricNames('sum by (decision) (rate(authz_decision_total{job=~"$job"}[5m]))').map(baseMetric)).toEqual([
      'authz_decision_total',
    ]);
    expect(EXPORTED_METRICS.has('authz_decision_total')).toBe(false);
  });

  it.each([
    'authz_decisions_total',
    'authz_check_duration_seconds',
    'authz_decision_cache_lookups_total',
    'authz_bundle_info',
    'authz_bundle_last_sync_timestamp_seconds',
    'authz_bundle_loads_total',
    'authz_shadow_mismatches_total',
    'authz_ratelimited_total',
    'process_resident_memory_bytes',
    'nodejs_eventloop_lag_seconds',
  ])('charts %s', (metric) => {
    expect(exprs.some((e) => metricNames(e).map(baseMetric).includes(metric))).toBe(true);
  });

  it('shows check latency at p50, p99 and p99.9 from the histogram buckets', () => {
    const quantiles = exprs
      .filter((e) => e.includes('authz_check_duration_seconds_bucket'))
      .map((e) => Number(/histogram_quantile\(\s*([\d.]+)/.exec(e)?.[1]));
    expect(quantiles).toEqual(expect.arrayContaining([0.5, 0.99, 0.999]));
  });

  it('computes sync age from the last-sync timestamp, only where there was a sync (0 in directory mode)', () => {
    expect(
      exprs.some((e) => /time\(\)\s*-\s*\(max\(authz_bundle_last_sync_timestamp_seconds\{[^}]*\}\) > 0\)/.test(e)),
    ).toBe(true);
  });
});
