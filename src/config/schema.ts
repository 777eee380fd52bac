/**
 * The one configuration schema: every setting, its default and its check.
 * Keys are camelCase; the same key is `--kebab-case` on the command line,
 * `AUTHZ_UPPER_SNAKE` in the environment and camelCase in the YAML file.
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { parseHostPort, type HostPort } from './values.js';
import { duration } from './duration.js';

export { duration };
import { FAIL_MODES } from '../enforcement/route-settings.js';
import { DEFAULT_SAFETY_OPTIONS } from '../enforcement/safety-options.js';
import { contextConfigShape, refineContextConfig } from './context-schema.js';
import { DEFAULT_HTTP_IDENTITY_HEADER } from '../envoy/http-check-request.js';

export const DEFAULT_LISTEN = '0.0.0.0:9191';
export const DEFAULT_ADMIN = '0.0.0.0:9192';
export const DEFAULT_POLICIES_DIR = 'policies';
/** Bundle store (S3 source) defaults. */
export const DEFAULT_BUNDLE_PREFIX = 'bundles/';
export const DEFAULT_POLL_INTERVAL_MS = 5_000;
/** Below this a fleet of servers would be polling the store, not serving. */
export const MIN_POLL_INTERVAL_MS = 100;
/** 100k decisions take ~30 MB (measured by `npm run bench`, see docs/performance.md). */
export const DEFAULT_DECISION_CACHE_ENTRIES = 100_000;
/** Entries are also dropped on every policy swap; the TTL only bounds how long an idle entry holds memory. */
export const DEFAULT_DECISION_CACHE_TTL_MS = 60_000;
export const MAX_CORES = 64;

const hostPort = z.string().transform((s, ctx): HostPort => {
  const hp = parseHostPort(s);
  if (!hp) {
    ctx.addIssue({ code: 'custom', message: `expected HOST:PORT (e.g. 0.0.0.0:9191), got "${s}"` });
    return z.NEVER;
  }
  return hp;
});

/** A whole number given as a number or a string of digits ("1e3" and "12abc" are refused, not coerced). */
export const wholeNumber = (min: number, max: number) =>
  z.union([z.number(), z.string()]).transform((v, ctx): number => {
    const n = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `expected a whole number from ${min} to ${max}, got "${v}"` });
      return z.NEVER;
    }
    return n;
  });

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

export const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])]).transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');

export const configSchema = z
  .object({
    listen: hostPort.default(parseHostPort(DEFAULT_LISTEN)!),
    admin: hostPort.default(parseHostPort(DEFAULT_ADMIN)!),
    policies: z.string().min(1).default(DEFAULT_POLICIES_DIR),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Log request headers (redacted) in each decision line. */
    decisionLogHeaders: bool.default(true),
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
    /** Most decisions the cache holds; 0 turns the cache off. */
    decisionCacheEntries: wholeNumber(0, 50_000_000).default(DEFAULT_DECISION_CACHE_ENTRIES),
    /** How long a cached decision may be reused (it is dropped on any policy swap anyway). */
    decisionCacheTtl: duration
      .refine((ms) => ms >= 1, { message: 'must be at least 1ms' })
      .default(DEFAULT_DECISION_CACHE_TTL_MS),
    /** Processes serving the gRPC port (node:cluster), each with its own Cedar instance; "auto" = one per CPU. */
    cores: cores.default(1),
    /** PEM certificate chain for the gRPC listener (TLS without a mesh). */
    tlsCert: z.string().min(1).optional(),
    /** PEM private key for tlsCert. */
    tlsKey: z.string().min(1).optional(),
    /** PEM CA bundle; when set, clients must present a certificate it signed (mTLS). */
    tlsClientCa: z.string().min(1).optional(),
    /** gRPC server reflection on the gRPC port (grpcurl list/describe without .proto files). */
    grpcReflection: bool.default(true),
    /** Envoy's HTTP ext_authz service (Istio envoyExtAuthzHttp) on this address; off when absent. */
    httpListen: hostPort.optional(),
    /** Envoy's http_service.path_prefix (Istio pathPrefix): removed from the path before deciding. */
    httpPathPrefix: z.string().refine((p) => p === '' || p.startsWith('/'), 'must start with "/" (or be empty)').default(''),
    /** Header whose URI= names the caller (XFCC, set by Envoy from the client certificate); "" for none. */
    httpIdentityHeader: z
      .string()
      .regex(/^([A-Za-z0-9!#$%&'*+.^_`|~-]+)?$/, 'expected an HTTP header name')
      .transform((s) => s.toLowerCase())
      .default(DEFAULT_HTTP_IDENTITY_HEADER),

    // S3 bundle source: used instead of `policies` when `bucket` and `bundle` are set.
    /** S3-compatible endpoint URL (MinIO, Ceph, R2, s3rver...); absent for AWS S3. */
    s3Endpoint: z.url({ protocol: /^https?$/, message: 'expected an http(s) URL such as http://127.0.0.1:9000' }).optional(),
    /** Region for request signing; the AWS chain (AWS_REGION, ~/.aws/config) otherwise, us-east-1 with an endpoint. */
    s3Region: z.string().min(1).optional(),
    /** Path-style bucket addressing; true by default when s3Endpoint is set. */
    s3ForcePathStyle: bool.optional(),
    bucket: z.string().regex(/^[^/\s]+$/, 'expected a bucket name (no "/" or spaces)').optional(),
    /** Key prefix of the bundle repository; "" for the bucket root. */
    prefix: z
      .string()
      .refine((p) => !p.startsWith('/'), 'must not start with "/"')
      .transform((p) => (p === '' || p.endsWith('/') ? p : `${p}/`))
      .default(DEFAULT_BUNDLE_PREFIX),
    /** Bundle name: the store keeps <prefix><bundle>/<version>/bundle.tar.gz and <prefix><bundle>/current.json. */
    bundle: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'expected letters, digits, ".", "_" or "-" (at most 128)').optional(),
    /** Directory where the last good bundle is kept, served at start when the store is unreachable. */
    stateDir: z.string().min(1).optional(),
    pollInterval: duration
      .refine((ms) => ms >= MIN_POLL_INTERVAL_MS, `must be at least ${MIN_POLL_INTERVAL_MS}ms`)
      .default(DEFAULT_POLL_INTERVAL_MS),
    /** PEM Ed25519 public key; when set, unsigned or wrongly signed bundles are refused. */
    verifyKey: z.string().min(1).optional(),

    /** Identity and context: JWT issuers, risk header, trusted hops, load window (context-schema.ts). */
    ...contextConfigShape,
  })
  .strict()
  .superRefine((c, ctx) => {
    refineContextConfig(c, ctx);
    if (!!c.tlsCert !== !!c.tlsKey) {
      ctx.addIssue({ code: 'custom', path: [c.tlsCert ? 'tlsKey' : 'tlsCert'], message: 'tlsCert and tlsKey must be given together' });
    }
    if (c.tlsClientCa && !c.tlsCert) {
      ctx.addIssue({ code: 'custom', path: ['tlsClientCa'], message: 'mTLS needs a server certificate: set tlsCert and tlsKey too' });
    }
    // Half an S3 source is a mistake, not a request for the directory source.
    if (c.bucket && !c.bundle) ctx.addIssue({ code: 'custom', path: ['bundle'], message: 'required with bucket (the bundle name to serve)' });
    if (c.bundle && !c.bucket) ctx.addIssue({ code: 'custom', path: ['bucket'], message: 'required with bundle (the bucket holding it)' });
    if (!c.bucket && !c.bundle) {
      // Silently ignoring these would, e.g., serve unverified policies when the operator asked for signatures.
      for (const key of ['verifyKey', 's3Endpoint'] as const) {
        if (c[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'only applies to the S3 bundle source; set bucket and bundle too' });
      }
    }
  });

export type Config = Readonly<z.output<typeof configSchema>>;
export type ConfigInput = z.input<typeof configSchema>;
