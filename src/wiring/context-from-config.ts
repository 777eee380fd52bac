/**
 * Config → the RequestEnricher the pipeline uses: JWT issuers with their key
 * sources (local JWKS files are read here, so a missing file stops start-up
 * naming the setting), the risk header, trusted hops and the load source.
 */
import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, type JSONWebKeySet } from 'jose';
import { ConfigError } from '../config/load-config.js';
import type { Config } from '../config/schema.js';
import type { IssuerConfig } from '../config/context-schema.js';
import type { ContextFieldSettings } from '../context/context-fields.js';
import { usableKeys, MIN_RSA_BITS } from '../context/jwks-key-set.js';
import {
  JwtIdentity,
  type IssuerSettings,
  type JwtIdentityOptions,
  type JwtSettings,
  type KeySource,
} from '../context/jwt-identity.js';
import { NO_LOAD, type LoadSource } from '../context/server-load.js';
import { RequestEnricher } from '../context/request-enricher.js';

async function keySource(location: string, field: string): Promise<KeySource> {
  if (/^https?:\/\//i.test(location)) return { kind: 'url', url: location };
  let jwks: unknown;
  try {
    jwks = JSON.parse(await readFile(location, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${field}: cannot read the JWKS file ${location}: ${(err as Error).message}`);
  }
  const keys = (jwks as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0)
    throw new ConfigError(`${field}: ${location} is not a JWKS (expected {"keys": [...]} with at least one key)`);
  try {
    createLocalJWKSet(jwks as JSONWebKeySet);
  } catch (err) {
    throw new ConfigError(`${field}: ${location} is not a usable JWKS: ${(err as Error).message}`);
  }
  if (usableKeys(jwks as JSONWebKeySet).jwks.keys.length === 0) {
    throw new ConfigError(
      `${field}: ${location} holds no usable key (RSA keys under ${MIN_RSA_BITS} bits and symmetric keys are ignored)`,
    );
  }
  return { kind: 'file', path: location, jwks: jwks as JSONWebKeySet };
}

function issuerEntries(config: Config): { entry: IssuerConfig; field: string }[] {
  const out: { entry: IssuerConfig; field: string }[] = [];
  if (config.jwtIssuer)
    out.push({ entry: { issuer: config.jwtIssuer, audiences: config.jwtAudience, jwks: config.jwks! }, field: 'jwks' });
  config.jwtIssuers.forEach((entry, n) => {
    out.push({ entry, field: `jwtIssuers.${n}.jwks` });
  });
  return out;
}

export async function jwtSettingsFromConfig(config: Config): Promise<JwtSettings | undefined> {
  const entries = issuerEntries(config);
  if (entries.length === 0 && !config.jwtUpstreamMetadata && !config.jwtUpstreamHeader) return undefined;
  const issuers: IssuerSettings[] = [];
  for (const { entry, field } of entries) {
    issuers.push({
      issuer: entry.issuer,
      audiences: [...(entry.audience ?? []), ...(entry.audiences ?? [])],
      keys: await keySource(entry.jwks, field),
      algorithms: entry.algorithms ?? config.jwtAlgorithms,
      clockSkewMs: entry.clockSkew ?? config.jwtClockSkew,
      mapping: {
        principalClaim: entry.principalClaim ?? config.jwtPrincipalClaim,
        parentClaims: entry.parentClaims ?? config.jwtParentClaims,
      },
    });
  }
  return {
    issuers,
    upstreamMetadata: config.jwtUpstreamMetadata,
    ...(config.jwtUpstreamHeader ? { upstreamHeader: config.jwtUpstreamHeader } : {}),
    upstreamHeaderPrincipals: new Set(config.jwtUpstreamTrustedPrincipal),
    upstreamIssuers: new Set([...issuers.map((i) => i.issuer), ...config.jwtUpstreamIssuers]),
    ignorePaths: config.jwtIgnorePaths,
    realm: config.jwtRealm,
    jwks: { timeoutMs: config.jwksTimeout, refreshMs: config.jwksRefresh, cooldownMs: config.jwksCooldown },
    clockSkewMs: config.jwtClockSkew,
  };
}

export function fieldSettingsFromConfig(config: Config, load: LoadSource = NO_LOAD): ContextFieldSettings {
  return {
    trustedHops: config.trustedHops,
    load,
    ...(config.riskHeader
      ? { risk: { header: config.riskHeader, trustedPrincipals: new Set(config.riskTrustedPrincipal) } }
      : {}),
  };
}

/** Build (not start) the enricher; call `start()` to fetch remote key sets. */
export async function requestEnricherFromConfig(
  config: Config,
  load: LoadSource = NO_LOAD,
  jwtOptions: JwtIdentityOptions = {},
): Promise<RequestEnricher> {
  const jwt = await jwtSettingsFromConfig(config);
  return new RequestEnricher(jwt ? new JwtIdentity(jwt, jwtOptions) : undefined, fieldSettingsFromConfig(config, load));
}
