/**
 * Command-line options for identity and context, shared by `serve` and
 * `check` so both read a request the same way. Each is also an AUTHZ_*
 * environment variable and a camelCase key of the YAML config file.
 */
import type { OptionSpec } from './command.js';

export const CONTEXT_OPTIONS: Record<string, OptionSpec> = {
  'jwt-issuer': { type: 'string', description: 'Accept bearer JWTs from this issuer ("iss")', valueName: 'ISS' },
  'jwt-audience': { type: 'string', multiple: true, description: 'Audience a token must carry ("aud"); required with --jwt-issuer', valueName: 'AUD' },
  jwks: { type: 'string', description: "The issuer's signing keys: a JWKS file or an http(s) URL (fetched, cached, refreshed)", valueName: 'FILE|URL' },
  'risk-header': { type: 'string', description: 'Header carrying a 0-100 risk score (context.risk)', valueName: 'NAME' },
  'risk-trusted-principal': { type: 'string', multiple: true, description: 'Source principal whose risk header is believed', valueName: 'SPIFFE' },
  'trusted-hops': { type: 'string', description: 'Proxies whose x-forwarded-for entries are believed for IP lists (default 0)', valueName: 'N' },
};
