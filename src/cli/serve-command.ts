import { loadConfig, kebabToCamel } from '../config/load-config.js';
import {
  DEFAULT_ADMIN,
  DEFAULT_DECISION_CACHE_ENTRIES,
  DEFAULT_LISTEN,
  DEFAULT_POLICIES_DIR,
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_PUSH_POLL_INTERVAL_MS,
} from '../config/schema.js';
import type { Config } from '../config/schema.js';
import type { RunningServer } from '../server/authz-server.js';
import { dropGrpcBindNoise } from '../server/listen-error.js';
import type { Command, OptionSpec } from './command-framework.js';
import { NOTIFY_OPTIONS, S3_STORE_OPTIONS } from './store-options.js';
import { CONTEXT_OPTIONS, JWT_TUNING_OPTIONS } from './context-options.js';
import { TRANSPORT_OPTIONS } from './transport-options.js';
import { settingsHelp } from './settings-help.js';
import { DEFAULT_LOAD_WINDOW_MS } from '../context/server-load.js';

const SERVE_OPTIONS: Record<string, OptionSpec> = {
  config: { type: 'string', description: 'YAML config file (also AUTHZ_CONFIG)', valueName: 'FILE' },
  policies: { type: 'string', description: `Policy directory (default ${DEFAULT_POLICIES_DIR})`, valueName: 'DIR' },
  'policies-settle': {
    type: 'string',
    description: 'How long the policy directory must hold still before a change is served (default 200ms)',
    valueName: 'DURATION',
  },
  listen: { type: 'string', description: `gRPC ext_authz address (default ${DEFAULT_LISTEN})`, valueName: 'HOST:PORT' },
  admin: { type: 'string', description: `Admin HTTP address (default ${DEFAULT_ADMIN})`, valueName: 'HOST:PORT' },
  'grpc-reflection': {
    type: 'string',
    description: 'gRPC server reflection on the gRPC port, for grpcurl: true|false (default true)',
    valueName: 'BOOL',
  },
  'http-listen': {
    type: 'string',
    description: "Also answer Envoy's HTTP ext_authz protocol (Istio envoyExtAuthzHttp) here (default: off)",
    valueName: 'HOST:PORT',
  },
  'http-path-prefix': {
    type: 'string',
    description: "Envoy's http_service.path_prefix (Istio pathPrefix), removed from the path before deciding",
    valueName: 'PREFIX',
  },
  'http-identity-header': {
    type: 'string',
    description:
      'Header Envoy sets from the client certificate (XFCC); its URI= is the source principal (default x-forwarded-client-cert; "" for none)',
    valueName: 'NAME',
  },
  'log-level': {
    type: 'string',
    description: 'fatal|error|warn|info|debug|trace|silent (default info)',
    valueName: 'LEVEL',
  },
  'decision-log-headers': {
    type: 'string',
    description: 'Log request headers, redacted, in decision lines: true|false (default true)',
    valueName: 'BOOL',
  },
  'tls-cert': { type: 'string', description: 'PEM certificate (chain) for the gRPC listener', valueName: 'FILE' },
  'tls-key': { type: 'string', description: 'PEM private key for --tls-cert', valueName: 'FILE' },
  'tls-client-ca': {
    type: 'string',
    description: 'PEM CA bundle; clients must present a certificate it signed (mTLS)',
    valueName: 'FILE',
  },
  'allowed-callers': {
    type: 'string',
    multiple: true,
    description: 'With mTLS: SPIFFE id (or prefix ending in *) allowed to call Check; others get UNAUTHENTICATED',
    valueName: 'SPIFFE',
  },
  'decision-log-redact-headers': {
    type: 'string',
    multiple: true,
    description: 'Header redacted in decision lines, on top of the built-in list',
    valueName: 'NAME',
  },
  'decision-log-max-string': {
    type: 'string',
    description: 'Longest string per field of a decision line (default 1024)',
    valueName: 'N',
  },
  'body-max-bytes': {
    type: 'string',
    description:
      'Longest request body policies see as context.body / context.json; longer counts as truncated (default 65536)',
    valueName: 'N',
  },
  'json-max-depth': {
    type: 'string',
    description: 'Deepest nesting of a JSON body parsed into context.json (default 32)',
    valueName: 'N',
  },
  'json-max-keys': {
    type: 'string',
    description: 'Most keys plus array elements of a JSON body parsed into context.json (default 1000)',
    valueName: 'N',
  },
  'log-destination': { type: 'string', description: 'stdout or a file path (default stdout)', valueName: 'PATH' },
  'fail-mode': {
    type: 'string',
    description:
      'closed|open: answer when no decision can be made (default closed; per route: context_extensions fail_mode)',
    valueName: 'MODE',
  },
  'decision-timeout': {
    type: 'string',
    description: 'Budget per decision, e.g. 50ms; past it the fail mode answers (default 0: only the gRPC deadline)',
    valueName: 'DURATION',
  },
  'dry-run': { type: 'boolean', description: 'Log denies but answer allow with x-authz-dry-run-decision: deny' },
  'shadow-evaluation': {
    type: 'string',
    description: 'after-reply|inline: when shadow policies/versions are evaluated (default after-reply)',
    valueName: 'WHEN',
  },
  'shadow-sample-rate': {
    type: 'string',
    description: 'Fraction 0..1 of requests evaluated in shadow (default 1)',
    valueName: 'RATE',
  },
  'rate-limit-max-keys': {
    type: 'string',
    description: 'Most rate limit buckets kept in memory (default 100000)',
    valueName: 'N',
  },
  // S3 bundle source (instead of --policies when --bucket and --bundle are given).
  ...S3_STORE_OPTIONS,
  'state-dir': {
    type: 'string',
    description: 'Keep the last good bundle here; served at start when the store is unreachable',
    valueName: 'DIR',
  },
  'poll-interval': {
    type: 'string',
    description: `How often to poll the bundle pointer (default ${DEFAULT_POLL_INTERVAL_MS / 1000}s; ${DEFAULT_PUSH_POLL_INTERVAL_MS / 1000}s with --notify)`,
    valueName: 'DURATION',
  },
  ...NOTIFY_OPTIONS,
  'max-policy-age': {
    type: 'string',
    description:
      'Opt-in: past this long without confirming its version with the store (e.g. 10m), report not-ready and answer by --fail-mode',
    valueName: 'DURATION',
  },
  'verify-key': {
    type: 'string',
    multiple: true,
    description: 'Ed25519 public key (PEM, one per file); refuse bundles none of them signed',
    valueName: 'PUB',
  },
  'signed-not-before': {
    type: 'string',
    description: 'Rollback floor: refuse bundles signed before this time (ISO 8601)',
    valueName: 'TIME',
  },
  ...CONTEXT_OPTIONS,
  ...JWT_TUNING_OPTIONS,
  'load-window': {
    type: 'string',
    description: `Window of event-loop utilisation behind context.load (default ${DEFAULT_LOAD_WINDOW_MS / 1000}s)`,
    valueName: 'DURATION',
  },
  engine: {
    type: 'string',
    description:
      "js|wasm: evaluator of the policies; js compiles them to JavaScript, wasm is Cedar's own build (default js)",
    valueName: 'ENGINE',
  },
  'decision-cache-entries': {
    type: 'string',
    description: `Most decisions cached; 0 turns the cache off (default ${DEFAULT_DECISION_CACHE_ENTRIES})`,
    valueName: 'N',
  },
  'decision-cache-ttl': {
    type: 'string',
    description: 'How long a cached decision is reused, e.g. 30s (default 60s)',
    valueName: 'DURATION',
  },
  'otel-endpoint': {
    type: 'string',
    description:
      "OTLP/HTTP collector (http://HOST:4318): a span per Check, child of the request's traceparent/b3; OTEL_* variables honoured (default off)",
    valueName: 'URL',
  },
  ...TRANSPORT_OPTIONS,
  cores: {
    type: 'string',
    description: 'Processes sharing the gRPC port, each with its own Cedar; a number or auto (default 1)',
    valueName: 'N',
  },
};

/** Flags → camelCase config keys, leaving out those not given. */
export function flagsToConfig(
  values: Record<string, unknown>,
  skip: string[] = ['config', 'help'],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) if (!skip.includes(k) && v !== undefined) out[kebabToCamel(k)] = v;
  return out;
}

export const serveCommand: Command = {
  path: ['serve'],
  summary: 'run the ext_authz gRPC server and the admin HTTP server',
  usage:
    'serve [--policies DIR | --bucket B --bundle NAME [--s3-endpoint URL] [--state-dir DIR] [--poll-interval 2s] [--verify-key PUB] [--notify nats://HOST:4222] [--max-policy-age 10m]] [--listen HOST:PORT] [--admin HOST:PORT] [--config FILE]',
  options: SERVE_OPTIONS,
  optionsShown: ['config'],
  get details() {
    return settingsHelp(SERVE_OPTIONS, ['config', 'help']);
  },
  async run(values) {
    const config = loadConfig({ flags: flagsToConfig(values), file: values.config as string | undefined });
    dropGrpcBindNoise();
    if (config.cores > 1) return serveCluster(config);
    // Loaded here, not at the top: every other command (lockdown during an incident) starts faster without the server's modules.
    const { startAuthzServer } = await import('../server/authz-server.js');
    const server = await startAuthzServer(config);
    // People starting it by hand get one sentence; log collectors (not a terminal) get only the JSON lines.
    if (process.stdout.isTTY) process.stdout.write(`${startLine(config, server)}\n`);
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        server.logger.info({ signal }, 'shutting down');
        void server.close().then(resolve);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    return 0;
  },
};

/** One human-readable line saying where it listens and what it serves. */
export function startLine(
  config: Config,
  server: Pick<RunningServer, 'grpcPort' | 'httpPort' | 'adminPort' | 'policySet'>,
): string {
  const set = server.policySet.current;
  const source =
    config.bucket && config.bundle
      ? `bundle s3://${config.bucket}/${config.prefix}${config.bundle}`
      : `policies from ${config.policies}/`;
  const serving = set
    ? `${set.policySet.policies.size} ${set.policySet.policies.size === 1 ? 'policy' : 'policies'}, version ${set.version}`
    : 'no policy set yet: checks are denied 503 until one compiles';
  const tls = config.tlsClientCa ? ' (mTLS)' : config.tlsCert ? ' (TLS)' : '';
  const httpAuthz = config.httpListen ? `, HTTP ext_authz on ${config.httpListen.host}:${server.httpPort}` : '';
  return `authz serving ${source} (${serving}); gRPC ext_authz on ${config.listen.host}:${server.grpcPort}${tls}${httpAuthz}, admin HTTP on ${config.admin.host}:${server.adminPort} (/metrics, /readyz, /bundle)`;
}

/** `--cores N`: this process supervises N workers (cluster.fork runs this same command in each). */
async function serveCluster(config: Config): Promise<number> {
  const { isClusterWorker, startClusterPrimary, startClusterWorker } = await import('../server/cluster.js');
  if (isClusterWorker()) {
    await startClusterWorker(config);
    return new Promise<number>(() => undefined); // a worker runs until the primary tells it to stop
  }
  const running = await startClusterPrimary(config);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      running.logger.info({ signal }, 'shutting down');
      void running.close().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}
