/**
 * Command-line options for identity and context, shared by `serve` and
 * `check` so both read a request the same way. Each is also an AUTHZ_*
 * environment variable and a camelCase key of the YAML config file.
 */
import type { OptionSpec } from './command-framework.js';
import {
  DEFAULT_JWKS_COOLDOWN_MS,
  DEFAULT_JWKS_REFRESH_MS,
  DEFAULT_JWKS_TIMEOUT_MS,
  DEFAULT_JWT_CLOCK_SKEW_MS,
  DEFAULT_JWT_REALM,
} from '../config/context-schema.js';
import { DEFAULT_PRINCIPAL_CLAIM } from '../context/jwt-claims.js';

export const CONTEXT_OPTIONS: Record<string, OptionSpec> = {
  'jwt-issuer': { type: 'string', description: 'Accept bearer JWTs from this issuer ("iss")', valueName: 'ISS' },
  'jwt-audience': {
    type: 'string',
    multiple: true,
    description: 'Audience a token must carry ("aud"); required with --jwt-issuer',
    valueName: 'AUD',
  },
  jwks: {
    type: 'string',
    description: "The issuer's signing keys: a JWKS file or an http(s) URL (fetched, cached, refreshed)",
    valueName: 'FILE|URL',
  },
  'risk-header': {
    type: 'string',
    description: 'Header carrying a 0-100 risk score (context.risk)',
    valueName: 'NAME',
  },
  'risk-trusted-principal': {
    type: 'string',
    multiple: true,
    description: 'Source principal whose risk header is believed',
    valueName: 'SPIFFE',
  },
  'trusted-hops': {
    type: 'string',
    description: 'Proxies whose x-forwarded-for entries are believed for IP lists (default 0)',
    valueName: 'N',
  },
};

/** JWT settings a server operator tunes (serve only; `check` takes them from --config). */
export const JWT_TUNING_OPTIONS: Record<string, OptionSpec> = {
  'jwt-algorithms': {
    type: 'string',
    description: 'Accepted signature algorithms, comma-separated (default: every asymmetric one)',
    valueName: 'LIST',
  },
  'jwt-clock-skew': {
    type: 'string',
    description: `Leeway for exp/nbf (default ${DEFAULT_JWT_CLOCK_SKEW_MS / 1000}s)`,
    valueName: 'DURATION',
  },
  'jwt-principal-claim': {
    type: 'string',
    description: `Claim naming the User principal (default ${DEFAULT_PRINCIPAL_CLAIM})`,
    valueName: 'CLAIM',
  },
  'jwt-ignore-paths': {
    type: 'string',
    multiple: true,
    description: 'Path (exact, or a prefix ending in *) whose bearer tokens are ignored',
    valueName: 'PATH',
  },
  'jwt-upstream-metadata': {
    type: 'string',
    description: "Trust payloads Envoy's jwt_authn verified (metadata_context): true|false (default false)",
    valueName: 'BOOL',
  },
  'jwt-upstream-header': {
    type: 'string',
    description: 'Header carrying a payload an upstream filter verified',
    valueName: 'NAME',
  },
  'jwt-upstream-trusted-principal': {
    type: 'string',
    multiple: true,
    description: 'Source principal (the gateway that verified the token) whose --jwt-upstream-header is believed',
    valueName: 'SPIFFE',
  },
  'jwt-upstream-issuers': {
    type: 'string',
    multiple: true,
    description: 'Issuer whose upstream-verified payloads are accepted',
    valueName: 'ISS',
  },
  'jwt-realm': {
    type: 'string',
    description: `Realm in www-authenticate on 401 (default ${DEFAULT_JWT_REALM})`,
    valueName: 'REALM',
  },
  'jwks-timeout': {
    type: 'string',
    description: `Timeout of a JWKS fetch (default ${DEFAULT_JWKS_TIMEOUT_MS / 1000}s)`,
    valueName: 'DURATION',
  },
  'jwks-refresh': {
    type: 'string',
    description: `How often a JWKS URL is fetched again (default ${DEFAULT_JWKS_REFRESH_MS / 60_000}m)`,
    valueName: 'DURATION',
  },
  'jwks-cooldown': {
    type: 'string',
    description: `Least time between fetches for an unknown key id (default ${DEFAULT_JWKS_COOLDOWN_MS / 1000}s)`,
    valueName: 'DURATION',
  },
};
