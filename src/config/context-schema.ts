/**
 * Settings for identity and context (JWT issuers, risk header, trusted
 * proxies, load window), spread into the one config schema in schema.ts.
 * The single-issuer case has flags (--jwt-issuer, --jwt-audience, --jwks);
 * several issuers and claim mappings are YAML (`jwtIssuers`).
 */
import { z } from 'zod';
import { DEFAULT_LOAD_WINDOW_MS } from '../context/server-load.js';
import { MAX_TRUSTED_HOPS } from '../context/client-address.js';
import { DEFAULT_PARENT_CLAIMS, DEFAULT_PRINCIPAL_CLAIM } from '../context/jwt-claims.js';
import { DEFAULT_ALGORITHMS } from '../context/jwt-identity.js';
import { duration } from './duration.js';

export const DEFAULT_JWT_CLOCK_SKEW_MS = 30_000;
export const DEFAULT_JWKS_TIMEOUT_MS = 5_000;
export const DEFAULT_JWKS_REFRESH_MS = 10 * 60_000;
/** jose's own default: an unknown key id refetches the key set at most this often. */
export const DEFAULT_JWKS_COOLDOWN_MS = 30_000;
export const DEFAULT_JWT_REALM = 'authz';

// A local copy of the bool parser: importing it from schema.ts would be a module cycle.
const flag = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');

/** A list from YAML, a repeated flag, or one comma-separated environment value. */
const stringList = z.union([z.array(z.string().min(1)), z.string()]).transform((v) =>
  Array.isArray(v)
    ? v
    : v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
);

const algorithm = z.enum(DEFAULT_ALGORITHMS, {
  message: `expected one of ${DEFAULT_ALGORITHMS.join(', ')} (symmetric and "none" are not accepted)`,
});
const algorithms = z
  .union([z.array(algorithm), z.string()])
  .transform((v) =>
    Array.isArray(v)
      ? v
      : v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
  )
  .pipe(z.array(algorithm).min(1));

const ENTITY_TYPE = /^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*$/;
const parentClaims = z.record(
  z.string().min(1),
  z.string().regex(ENTITY_TYPE, 'expected a Cedar entity type such as Group or Role'),
);

const jwksLocation = z
  .string()
  .min(1)
  .superRefine((s, ctx) => {
    if (/^https?:\/\//i.test(s) && !URL.canParse(s))
      ctx.addIssue({ code: 'custom', message: `"${s}" is not a valid URL` });
  });

const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected an HTTP header name')
  .transform((s) => s.toLowerCase());

export const issuerSchema = z
  .object({
    issuer: z.string().min(1),
    /** One audience or several; a token must carry one of them. */
    audience: stringList.optional(),
    audiences: stringList.optional(),
    jwks: jwksLocation,
    algorithms: algorithms.optional(),
    clockSkew: duration.optional(),
    principalClaim: z.string().min(1).optional(),
    parentClaims: parentClaims.optional(),
  })
  .strict();

export type IssuerConfig = z.output<typeof issuerSchema>;

export const contextConfigShape = {
  /** Single issuer: its `iss`, audience(s) and JWKS (file path or http(s) URL). */
  jwtIssuer: z.string().min(1).optional(),
  jwtAudience: stringList.optional(),
  jwks: jwksLocation.optional(),
  /** Several issuers (YAML), each with its own audience, keys and claim mapping. */
  jwtIssuers: z.array(issuerSchema).default([]),
  /** Defaults for every issuer that does not set its own. */
  jwtAlgorithms: algorithms.default([...DEFAULT_ALGORITHMS]),
  jwtClockSkew: duration.default(DEFAULT_JWT_CLOCK_SKEW_MS),
  jwtPrincipalClaim: z.string().min(1).default(DEFAULT_PRINCIPAL_CLAIM),
  jwtParentClaims: parentClaims.default({ ...DEFAULT_PARENT_CLAIMS }),
  /** Paths (exact, or prefix ending in *) whose bearer tokens are ignored. */
  jwtIgnorePaths: stringList.default([]),
  /** Trust payloads Envoy's jwt_authn filter verified (metadata_context, or this header). */
  jwtUpstreamMetadata: flag.default(false),
  jwtUpstreamHeader: headerName.optional(),
  /** Source principals (the gateway that verified the token) whose jwtUpstreamHeader is believed; from anyone else a client wrote it. */
  jwtUpstreamTrustedPrincipal: stringList.default([]),
  /** Issuers whose upstream-verified payloads are accepted, besides jwtIssuer/jwtIssuers (payloads of any other issuer are refused). */
  jwtUpstreamIssuers: stringList.default([]),
  jwtRealm: z.string().min(1).default(DEFAULT_JWT_REALM),
  jwksTimeout: duration.default(DEFAULT_JWKS_TIMEOUT_MS),
  jwksRefresh: duration.default(DEFAULT_JWKS_REFRESH_MS),
  jwksCooldown: duration.default(DEFAULT_JWKS_COOLDOWN_MS),
  /** Header carrying a 0–100 risk score, believed only from riskTrustedPrincipal. */
  riskHeader: headerName.optional(),
  riskTrustedPrincipal: stringList.default([]),
  /** Proxies in front of Envoy whose x-forwarded-for entries are believed. */
  trustedHops: z.coerce.number().int().min(0).max(MAX_TRUSTED_HOPS).default(0),
  /** Window of event-loop utilisation behind context.load. */
  loadWindow: duration.default(DEFAULT_LOAD_WINDOW_MS),
};

type ContextConfig = z.output<z.ZodObject<typeof contextConfigShape>>;

/** Checks across fields; each issue names the field to fix. */
export function refineContextConfig(c: ContextConfig, ctx: z.RefinementCtx): void {
  const issue = (field: string, message: string) => ctx.addIssue({ code: 'custom', path: [field], message });
  if (c.jwtIssuer) {
    if (!c.jwks) issue('jwks', 'required when jwtIssuer is set (a JWKS file path or http(s) URL)');
    if (!c.jwtAudience || c.jwtAudience.length === 0) {
      issue(
        'jwtAudience',
        'required when jwtIssuer is set (without it, tokens minted for any other API of that issuer would be accepted)',
      );
    }
  } else {
    if (c.jwks) issue('jwks', 'set jwtIssuer too (or configure issuers under jwtIssuers)');
    if (c.jwtAudience) issue('jwtAudience', 'set jwtIssuer too (or configure issuers under jwtIssuers)');
  }
  const seen = new Set<string>(c.jwtIssuer ? [c.jwtIssuer] : []);
  c.jwtIssuers.forEach((i, n) => {
    if (seen.has(i.issuer))
      ctx.addIssue({
        code: 'custom',
        path: ['jwtIssuers', n, 'issuer'],
        message: `issuer "${i.issuer}" is configured twice`,
      });
    seen.add(i.issuer);
    if ((i.audience?.length ?? 0) + (i.audiences?.length ?? 0) === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['jwtIssuers', n, 'audiences'],
        message: 'at least one audience is required',
      });
    }
  });
  const upstream = c.jwtUpstreamMetadata || c.jwtUpstreamHeader !== undefined;
  if (upstream && !c.jwtIssuer && c.jwtIssuers.length === 0 && c.jwtUpstreamIssuers.length === 0) {
    issue(
      'jwtUpstreamIssuers',
      'name the issuers whose upstream-verified payloads are accepted (or configure jwtIssuer/jwtIssuers); a payload from any other issuer is refused',
    );
  }
  if (!upstream && c.jwtUpstreamIssuers.length > 0)
    issue('jwtUpstreamIssuers', 'set jwtUpstreamMetadata or jwtUpstreamHeader too');
  if (c.jwtUpstreamHeader && c.jwtUpstreamTrustedPrincipal.length === 0) {
    issue(
      'jwtUpstreamTrustedPrincipal',
      'required with jwtUpstreamHeader: the source principals (e.g. the ingress gateway) whose payload header is believed; from anyone else a client could have written it',
    );
  }
  if (c.jwtUpstreamTrustedPrincipal.length > 0 && !c.jwtUpstreamHeader)
    issue('jwtUpstreamTrustedPrincipal', 'set jwtUpstreamHeader too');
  if (c.jwksRefresh < 1000) issue('jwksRefresh', 'must be at least 1s');
  if (c.riskTrustedPrincipal.length > 0 && !c.riskHeader) issue('riskTrustedPrincipal', 'set riskHeader too');
  if (c.loadWindow < 100) issue('loadWindow', 'must be at least 100ms');
}
