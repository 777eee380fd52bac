/**
 * The one configuration schema: every setting, its default and its check.
 * Keys are camelCase; the same key is `--kebab-case` on the command line,
 * `AUTHZ_UPPER_SNAKE` in the environment and camelCase in the YAML file.
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { parseHostPort, type HostPort } from './host-port.js';
import { duration } from './duration.js';

export { duration };
import { wholeNumber } from './whole-number.js';
import { FAIL_MODES } from '../enforcement/route-settings.js';
import { DEFAULT_SAFETY_OPTIONS } from '../enforcement/safety-options.js';
import { contextConfigShape, refineContextConfig } from './context-schema.js';
import { DEFAULT_DIRECTORY_SETTLE_MS, MAX_DIRECTORY_SETTLE_MS } from '../bundle/format/policy-directory.js';
import { callerPatternProblem } from '../identity/allowed-callers.js';
import { DEFAULT_LOG_MAX_STRING } from '../observability/decision-log.js';
import { DEFAULT_BODY_MAX_BYTES, DEFAULT_JSON_MAX_DEPTH, DEFAULT_JSON_MAX_KEYS } from '../envoy/request-body.js';
import { transportConfigShape } from './transport-schema.js';
import { DEFAULT_HTTP_IDENTITY_HEADER } from '../envoy/http-check-request.js';
import { DEFAULT_ENGINE, ENGINES } from '../cedar/js/engine-choice.js';

export const DEFAULT_LISTEN = '0.0.0.0:9191';
/**
 * Loopback: safe on a laptop (the admin port has no authentication and shows
 * metrics, the active bundle and the safety controls). Containers and
 * manifests bind what probes and Prometheus need (AUTHZ_ADMIN=0.0.0.0:9192).
 */
export const DEFAULT_ADMIN = '127.0.0.1:9192';
export const DEFAULT_POLICIES_DIR = 'policies';
/** Bundle store (S3 source) defaults. */
export const DEFAULT_BUNDLE_PREFIX = 'bundles/';
export const DEFAULT_POLL_INTERVAL_MS = 5_000;
/**
 * With push (`notify`), polling is only the safety net for a lost message or a
 * NATS outage: 10 s cuts store requests 5-10x from the 1-2 s polling that push
 * replaces, and still bounds how long a missed change can go unnoticed.
 */
export const DEFAULT_PUSH_POLL_INTERVAL_MS = 10_000;
/** Below this a fleet of servers would be polling the store, not serving. */
export const MIN_POLL_INTERVAL_MS = 100;
/** 100k decisions take ~30 MB (measured by `npm run bench`, see docs/performance.md). */
export const DEFAULT_DECISION_CACHE_ENTRIES = 100_000;
/** Entries are also dropped on every policy swap; the TTL only bounds how long an idle entry holds memory. */
export const DEFAULT_DECISION_CACHE_TTL_MS = 60_000;
export const MAX_CORES = 64;
/** Longest string a decision line carries per field (path, header value, principal...); longer ones are cut and marked. */
export const DEFAULT_DECISION_LOG_MAX_STRING = DEFAULT_LOG_MAX_STRING;

const hostPort = z.string().transform((s, ctx): HostPort => {
  const hp = parseHostPort(s);
  if (!hp) {
    ctx.addIssue({ code: 'custom', message: `expected HOST:PORT (e.g. 0.0.0.0:9191), got "${s}"` });
    return z.NEVER;
  }
  return hp;
});

export { wholeNumber };

/** Worker processes: a number, or "auto" for one per available CPU. */
export const cores = z.union([z.literal('auto'), z.number(), z.string()]).transform((v, ctx): number => {
  if (v === 'auto') return Math.min(MAX_CORES, availableParallelism());
  const n = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_CORES) {
    ctx.addIssue({ code: 'custom', message: `expected "auto" or a whole number from 1 to ${MAX_CORES}, got "${v}"` });
    return z.NEVER;
  }
  return n;
});

export const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');

/** A list from YAML, a repeated flag, or one comma-separated environment value. */
const listOf = <T extends z.ZodType<string, string>>(item: T) =>
  z
    .union([z.array(z.string()), z.string()])
    .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(item));

const fileList = listOf(z.string().min(1)).refine((l) => l.length > 0, 'expected at least one key file');

const headerNames = listOf(
  z
    .string()
    .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected HTTP header names')
    .transform((s) => s.toLowerCase()),
);

const callerPatterns = listOf(
  z.string().superRefine((s, ctx) => {
    const problem = callerPatternProblem(s);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }),
);

const isoTime = z.string().transform((s, ctx): Date => {
  const ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(s) ? Date.parse(s) : NaN;
  if (Number.isNaN(ms)) {
    ctx.addIssue({
      code: 'custom',
      message: `expected an ISO 8601 time with a zone, e.g. 2026-11-30T17:00:00Z, got "${s}"`,
    });
    return z.NEVER;
  }
  return new Date(ms);
});

/** "nats://host:4222" or several, comma-separated; each nats:// or tls:// with a host and port. */
export const notifyUrls = z.string().transform((s, ctx): string[] => {
  const urls = s
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
  const bad = urls.find((u) => !/^(nats|tls):\/\/([^@/\s]+@)?[^:/@\s]+:\d{1,5}$/.test(u));
  if (urls.length === 0 || bad !== undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected nats://HOST:PORT (or tls://, comma-separated for several), got "${bad ?? s}"`,
    });
    return z.NEVER;
  }
  return urls;
});

export const configSchema = z
  .object({
    listen: hostPort.default(parseHostPort(DEFAULT_LISTEN)!),
    admin: hostPort.default(parseHostPort(DEFAULT_ADMIN)!),
    policies: z.string().min(1).default(DEFAULT_POLICIES_DIR),
    /** How long the policy directory must hold still after a read before the read is served (0: only before == after). */
    policiesSettle: duration
      .refine((ms) => ms <= MAX_DIRECTORY_SETTLE_MS, `must be at most ${MAX_DIRECTORY_SETTLE_MS / 1000}s`)
      .default(DEFAULT_DIRECTORY_SETTLE_MS),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Log request headers (redacted) in each decision line. */
    decisionLogHeaders: bool.default(true),
    /** Header names redacted in decision lines, on top of the built-in list and every header the server is configured to trust. */
    decisionLogRedactHeaders: headerNames.default([]),
    /** Longest string logged per field of a decision line; longer values are cut (see docs/safety.md). */
    decisionLogMaxString: wholeNumber(64, 1024 * 1024).default(DEFAULT_DECISION_LOG_MAX_STRING),
    /** Longest request body policies see as context.body / context.json; a longer one counts as truncated (docs/context.md). */
    bodyMaxBytes: wholeNumber(1, 16 * 1024 * 1024).default(DEFAULT_BODY_MAX_BYTES),
    /** Deepest nesting of a JSON body parsed into context.json. */
    jsonMaxDepth: wholeNumber(1, 1000).default(DEFAULT_JSON_MAX_DEPTH),
    /** Most keys plus array elements (all levels) of a JSON body parsed into context.json. */
    jsonMaxKeys: wholeNumber(1, 1_000_000).default(DEFAULT_JSON_MAX_KEYS),
    /** Where log lines go: stdout, or a file path. */
    logDestination: z.string().min(1).default('stdout'),
    /** When the engine cannot decide (no set, evaluation error, deadline): deny 503 (closed) or allow (open). */
    failMode: z.enum(FAIL_MODES).default(DEFAULT_SAFETY_OPTIONS.failMode),
    /** Our own budget per decision (e.g. 50ms); 0 = only the gRPC deadline Envoy sends. */
    decisionTimeout: duration.default(DEFAULT_SAFETY_OPTIONS.decisionTimeoutMs),
    /** Answer rule-made denies as allows (logged as denies) on every route. */
    dryRun: bool.default(DEFAULT_SAFETY_OPTIONS.dryRun),
    /** Run shadow evaluations after the answer is sent, or inline before it. */
    shadowEvaluation: z.enum(['after-reply', 'inline']).default(DEFAULT_SAFETY_OPTIONS.shadowEvaluation),
    /** Fraction (0..1) of requests that get shadow evaluations. */
    shadowSampleRate: z.coerce.number().min(0).max(1).default(DEFAULT_SAFETY_OPTIONS.shadowSampleRate),
    /** Most rate limit buckets held in memory. */
    rateLimitMaxKeys: z.coerce.number().int().positive().default(DEFAULT_SAFETY_OPTIONS.rateLimitMaxKeys),
    /** Which evaluator decides: js (policies compiled to JS) or wasm (Cedar's own build); wasm also answers what js does not support. */
    engine: z.enum(ENGINES).default(DEFAULT_ENGINE),
    /** Most decisions the cache holds; 0 turns the cache off. */
    decisionCacheEntries: wholeNumber(0, 50_000_000).default(DEFAULT_DECISION_CACHE_ENTRIES),
    /** How long a cached decision may be reused (it is dropped on any policy swap anyway). */
    decisionCacheTtl: duration
      .refine((ms) => ms >= 1, { message: 'must be at least 1ms' })
      .default(DEFAULT_DECISION_CACHE_TTL_MS),
    /** OTLP/HTTP collector base URL (http://HOST:4318): one span per Check and per bundle activation. Absent: off, unless OTEL_EXPORTER_OTLP_ENDPOINT is set. */
    otelEndpoint: z
      .url({ protocol: /^https?$/, message: 'expected an http(s) URL such as http://127.0.0.1:4318' })
      .optional(),
    /** Processes serving the gRPC port (node:cluster), each with its own Cedar instance; "auto" = one per CPU. */
    cores: cores.default(1),
    /** PEM certificate chain for the gRPC listener (TLS without a mesh). */
    tlsCert: z.string().min(1).optional(),
    /** PEM private key for tlsCert. */
    tlsKey: z.string().min(1).optional(),
    /** PEM CA bundle; when set, clients must present a certificate it signed (mTLS). */
    tlsClientCa: z.string().min(1).optional(),
    /** With mTLS: SPIFFE ids allowed to call Check (exact, or a prefix ending in *); others get UNAUTHENTICATED. */
    allowedCallers: callerPatterns.default([]),
    /** gRPC server reflection on the gRPC port (grpcurl list/describe without .proto files). */
    grpcReflection: bool.default(true),
    /** Envoy's HTTP ext_authz service (Istio envoyExtAuthzHttp) on this address; off when absent. */
    httpListen: hostPort.optional(),
    /** Envoy's http_service.path_prefix (Istio pathPrefix): removed from the path before deciding. */
    httpPathPrefix: z
      .string()
      .refine((p) => p === '' || p.startsWith('/'), 'must start with "/" (or be empty)')
      .default(''),
    /** Header whose URI= names the caller (XFCC, set by Envoy from the client certificate); "" for none. */
    httpIdentityHeader: z
      .string()
      .regex(/^([A-Za-z0-9!#$%&'*+.^_`|~-]+)?$/, 'expected an HTTP header name')
      .transform((s) => s.toLowerCase())
      .default(DEFAULT_HTTP_IDENTITY_HEADER),

    // S3 bundle source: used instead of `policies` when `bucket` and `bundle` are set.
    /** S3-compatible endpoint URL (MinIO, Ceph, R2, s3rver...); absent for AWS S3. */
    s3Endpoint: z
      .url({ protocol: /^https?$/, message: 'expected an http(s) URL such as http://127.0.0.1:9000' })
      .optional(),
    /** Region for request signing; the AWS chain (AWS_REGION, ~/.aws/config) otherwise, us-east-1 with an endpoint. */
    s3Region: z.string().min(1).optional(),
    /** Path-style bucket addressing; true by default when s3Endpoint is set. */
    s3ForcePathStyle: bool.optional(),
    bucket: z
      .string()
      .regex(/^[^/\s]+$/, 'expected a bucket name (no "/" or spaces)')
      .optional(),
    /** Key prefix of the bundle repository; "" for the bucket root. */
    prefix: z
      .string()
      .refine((p) => !p.startsWith('/'), 'must not start with "/"')
      .transform((p) => (p === '' || p.endsWith('/') ? p : `${p}/`))
      .default(DEFAULT_BUNDLE_PREFIX),
    /** Bundle name: the store keeps <prefix><bundle>/<version>/bundle.tar.gz and <prefix><bundle>/current.json. */
    bundle: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'expected letters, digits, ".", "_" or "-" (at most 128)')
      .optional(),
    /** Directory where the last good bundle is kept, served at start when the store is unreachable. */
    stateDir: z.string().min(1).optional(),
    /** Absent: DEFAULT_POLL_INTERVAL_MS, or DEFAULT_PUSH_POLL_INTERVAL_MS with `notify` (see pollIntervalOf). */
    pollInterval: duration
      .refine((ms) => ms >= MIN_POLL_INTERVAL_MS, `must be at least ${MIN_POLL_INTERVAL_MS}ms`)
      .optional(),
    /** NATS server URL(s), comma-separated (nats://HOST:4222, tls://...): push the pointer over JetStream, report to the fleet. */
    notify: notifyUrls.optional(),
    /** NATS credentials file (.creds: user JWT and NKey seed). */
    notifyCreds: z.string().min(1).optional(),
    /** PEM CA bundle to verify the NATS server's certificate. */
    notifyTlsCa: z.string().min(1).optional(),
    /** PEM client certificate and key, when the NATS server requires TLS client authentication. */
    notifyTlsCert: z.string().min(1).optional(),
    notifyTlsKey: z.string().min(1).optional(),
    /**
     * Opt-in stale-policy guard: past this long without confirming its version
     * with the store, the server reports not-ready and answers by its fail mode.
     */
    maxPolicyAge: duration.refine((ms) => ms >= 1000, 'must be at least 1s').optional(),
    /** PEM Ed25519 public key; when set, unsigned or wrongly signed bundles are refused. */
    /** PEM Ed25519 public key files (one key each; several during a key rotation); when set, bundles not signed by one are refused. */
    verifyKey: fileList.optional(),
    /** Rollback floor: refuse bundles whose signature was made before this time (needs verifyKey). */
    signedNotBefore: isoTime.optional(),

    /** Identity and context: JWT issuers, risk header, trusted hops, load window (context-schema.ts). */
    ...contextConfigShape,

    /** Bounds on the gRPC listener: message size, HTTP/2 streams and headers, pending bytes, connection lifetimes (transport-schema.ts). */
    ...transportConfigShape,
  })
  .strict()
  .superRefine((c, ctx) => {
    refineContextConfig(c, ctx);
    if (!!c.tlsCert !== !!c.tlsKey) {
      ctx.addIssue({
        code: 'custom',
        path: [c.tlsCert ? 'tlsKey' : 'tlsCert'],
        message: 'tlsCert and tlsKey must be given together',
      });
    }
    if (c.allowedCallers.length > 0 && !c.tlsClientCa) {
      ctx.addIssue({
        code: 'custom',
        path: ['allowedCallers'],
        message:
          'needs mTLS on the listener (tlsCert, tlsKey and tlsClientCa): without client certificates there is no caller identity to check',
      });
    }
    if (c.signedNotBefore && !c.verifyKey) {
      ctx.addIssue({
        code: 'custom',
        path: ['signedNotBefore'],
        message: 'only applies with verifyKey (it is a floor on signature times)',
      });
    }
    if (!!c.notifyTlsCert !== !!c.notifyTlsKey) {
      ctx.addIssue({
        code: 'custom',
        path: [c.notifyTlsCert ? 'notifyTlsKey' : 'notifyTlsCert'],
        message: 'notifyTlsCert and notifyTlsKey must be given together',
      });
    }
    if (!c.notify) {
      for (const key of ['notifyCreds', 'notifyTlsCa', 'notifyTlsCert'] as const) {
        if (c[key] !== undefined)
          ctx.addIssue({ code: 'custom', path: [key], message: 'only applies with notify (the NATS server URL)' });
      }
    }
    if (c.maxPolicyAge !== undefined && c.maxPolicyAge <= pollIntervalOf(c)) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxPolicyAge'],
        message: `must be longer than the poll interval (${pollIntervalOf(c)}ms), or the policy would go stale between two polls`,
      });
    }
    if (c.tlsClientCa && !c.tlsCert) {
      ctx.addIssue({
        code: 'custom',
        path: ['tlsClientCa'],
        message: 'mTLS needs a server certificate: set tlsCert and tlsKey too',
      });
    }
    // Half an S3 source is a mistake, not a request for the directory source.
    if (c.bucket && !c.bundle)
      ctx.addIssue({ code: 'custom', path: ['bundle'], message: 'required with bucket (the bundle name to serve)' });
    if (c.bundle && !c.bucket)
      ctx.addIssue({ code: 'custom', path: ['bucket'], message: 'required with bundle (the bucket holding it)' });
    if (!c.bucket && !c.bundle) {
      // Silently ignoring these would, e.g., serve unverified policies when the operator asked for signatures.
      for (const key of ['verifyKey', 's3Endpoint', 'notify', 'maxPolicyAge'] as const) {
        if (c[key] !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: 'only applies to the S3 bundle source; set bucket and bundle too',
          });
      }
    }
  });

export type Config = Readonly<z.output<typeof configSchema>>;

/** The poll interval in force: as set, else 10 s with push and 5 s without. */
export function pollIntervalOf(config: Pick<Config, 'pollInterval' | 'notify'>): number {
  return config.pollInterval ?? (config.notify ? DEFAULT_PUSH_POLL_INTERVAL_MS : DEFAULT_POLL_INTERVAL_MS);
}
