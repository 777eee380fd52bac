/**
 * The one configuration schema: every setting, its default and its check.
 * Keys are camelCase; the same key is `--kebab-case` on the command line,
 * `AUTHZ_UPPER_SNAKE` in the environment and camelCase in the YAML file.
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { parseDurationMs, parseHostPort, type HostPort } from './values.js';

export const DEFAULT_LISTEN = '0.0.0.0:9191';
export const DEFAULT_ADMIN = '0.0.0.0:9192';
export const DEFAULT_POLICIES_DIR = 'policies';
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

export const duration = z.union([z.string(), z.number()]).transform((s, ctx): number => {
  const ms = parseDurationMs(s);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a duration such as 500ms, 2s or 1m, got "${s}"` });
    return z.NEVER;
  }
  return ms;
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
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!!c.tlsCert !== !!c.tlsKey) {
      ctx.addIssue({ code: 'custom', path: [c.tlsCert ? 'tlsKey' : 'tlsCert'], message: 'tlsCert and tlsKey must be given together' });
    }
    if (c.tlsClientCa && !c.tlsCert) {
      ctx.addIssue({ code: 'custom', path: ['tlsClientCa'], message: 'mTLS needs a server certificate: set tlsCert and tlsKey too' });
    }
  });

export type Config = Readonly<z.output<typeof configSchema>>;
export type ConfigInput = z.input<typeof configSchema>;
