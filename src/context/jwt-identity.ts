/**
 * End-user identity from JWTs: a verified bearer token (or a payload Envoy's
 * jwt_authn filter already verified, when configured to trust it) becomes the
 * principal `User::"<sub>"`.
 *
 * Verification (jose) is asynchronous, so `resolve()` answers synchronously
 * whenever it can: no token, a route that ignores tokens, an upstream payload,
 * a token verified before (cached until its `exp`), a token rejected before
 * for a reason that cannot change. Only a token seen for the first time costs
 * a promise; concurrent requests carrying it share that one verification.
 */
import { decodeJwt, errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { KeysUnavailableError, RemoteKeySet, StaticKeySet, WeakKeyError } from './jwks-key-set.js';
import type { PrincipalRef } from './principal.js';
import type { RequestModel } from '../envoy/request-model.js';
import { claimsToPrincipal, DEFAULT_CLAIM_MAPPING, type ClaimMapping } from './jwt-claims.js';

/** Envoy's jwt_authn filter writes verified payloads under this metadata namespace (Istio RequestAuthentication uses it). */
export const JWT_AUTHN_NAMESPACE = 'envoy.filters.http.jwt_authn';
/** A route sets context_extensions { jwt: "ignore" } (per-route CheckSettings) to skip token handling. */
export const JWT_CONTEXT_EXTENSION = 'jwt';
export const JWT_IGNORE = 'ignore';
export const DEFAULT_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;
/** Bounds on the token caches: about 10 MB of tokens at most, evicted oldest first. */
export const MAX_VERIFIED_TOKENS = 10_000;
export const MAX_REJECTED_TOKENS = 10_000;
/** A rejection that cannot change (bad signature, expired) is remembered this long, so a flood of one bad token costs one verify. */
export const REJECTED_TTL_MS = 60_000;

export type KeySource = { kind: 'url'; url: string } | { kind: 'file'; path: string; jwks: JSONWebKeySet };

export interface IssuerSettings {
  issuer: string;
  audiences: string[];
  keys: KeySource;
  algorithms: string[];
  clockSkewMs: number;
  mapping: ClaimMapping;
}

export interface JwksSettings {
  timeoutMs: number;
  /** Background refresh interval of remote key sets. */
  refreshMs: number;
  /** Minimum time between two fetches of one key set, whatever the outcome of the first (refreshes included). */
  cooldownMs: number;
}

export interface JwtSettings {
  issuers: IssuerSettings[];
  /** Trust payloads in metadata_context[envoy.filters.http.jwt_authn]. */
  upstreamMetadata: boolean;
  /** Trust a base64url JSON payload in this (lower-case) header (jwt_authn forward_payload_header)... */
  upstreamHeader?: string;
  /** ...only when the request comes from one of these source principals (the hop that verified the token). */
  upstreamHeaderPrincipals?: ReadonlySet<string>;
  /** Issuers whose upstream payloads are accepted (the configured issuers plus jwtUpstreamIssuers); others are refused. */
  upstreamIssuers?: ReadonlySet<string>;
  /** Paths whose tokens are ignored: exact, or a prefix ending in "*". */
  ignorePaths: string[];
  realm: string;
  jwks: JwksSettings;
  /** Clock skew for upstream payload `exp` checks. */
  clockSkewMs: number;
}

export type IdentityOutcome =
  | { kind: 'none' }
  | { kind: 'user'; principal: PrincipalRef; via: 'token' | 'cached' | 'upstream' }
  | { kind: 'rejected'; reason: 'unauthenticated' | 'identity_unavailable'; message: string; wwwAuthenticate?: string };

export type JwtResult = 'verified' | 'cached' | 'upstream' | 'rejected' | 'unavailable';

export interface JwtIdentityOptions {
  nowMs?: () => number;
  /** Called once per token-bearing request with how it was resolved (metrics). */
  onResult?: (result: JwtResult) => void;
  /** Background JWKS refresh failures (logging). */
  onRefreshError?: (issuer: string, error: Error) => void;
}

interface CachedOutcome {
  outcome: IdentityOutcome;
  untilMs: number;
}

const NONE: IdentityOutcome = Object.freeze({ kind: 'none' });

interface IssuerRuntime {
  settings: IssuerSettings;
  getKey: JWTVerifyGetKey;
  remote?: RemoteKeySet;
}

export class JwtIdentity {
  private readonly issuers = new Map<string, IssuerRuntime>();
  private readonly verified = new Map<string, CachedOutcome>();
  private readonly rejected = new Map<string, CachedOutcome>();
  private readonly inFlight = new Map<string, Promise<IdentityOutcome>>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly now: () => number;

  constructor(
    readonly settings: JwtSettings,
    private readonly options: JwtIdentityOptions = {},
  ) {
    this.now = options.nowMs ?? Date.now;
    for (const s of settings.issuers) {
      if (s.keys.kind === 'file') {
        this.issuers.set(s.issuer, { settings: s, getKey: new StaticKeySet(s.keys.jwks).getKey });
      } else {
        // Keys never go stale by age: the background refresh replaces them, and if the
        // issuer is down we keep verifying with the last keys rather than failing everyone.
        const remote = new RemoteKeySet(s.keys.url, {
          timeoutMs: settings.jwks.timeoutMs,
          cooldownMs: settings.jwks.cooldownMs,
          now: options.nowMs,
        });
        this.issuers.set(s.issuer, { settings: s, getKey: remote.getKey, remote });
      }
    }
  }

  /** Fetch remote key sets once (failures are reported, not fatal) and start their refresh timers. */
  async start(): Promise<void> {
    const remotes = [...this.issuers.values()].filter((i) => i.remote);
    await Promise.all(remotes.map((i) => this.refresh(i)));
    for (const i of remotes) {
      const t = setInterval(() => void this.refresh(i), this.settings.jwks.refreshMs);
      t.unref();
      this.timers.push(t);
    }
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
  }

  private async refresh(i: IssuerRuntime): Promise<void> {
    const before = i.remote!.fetches;
    await i.remote!.refresh();
    const err = i.remote!.error;
    if (err && i.remote!.fetches !== before) this.options.onRefreshError?.(i.settings.issuer, err);
  }

  /** Fetches started per remote key set, by issuer (admin, tests). */
  jwksFetches(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [iss, i] of this.issuers) if (i.remote) out[iss] = i.remote.fetches;
    return out;
  }

  /** Whether this route skips token handling altogether. */
  ignores(input: RequestModel): boolean {
    if (input.contextExtensions[JWT_CONTEXT_EXTENSION] === JWT_IGNORE) return true;
    for (const p of this.settings.ignorePaths) {
      if (p.endsWith('*') ? input.path.startsWith(p.slice(0, -1)) : input.path === p) return true;
    }
    return false;
  }

  resolve(input: RequestModel): IdentityOutcome | Promise<IdentityOutcome> {
    if (this.ignores(input)) return NONE;
    const upstream = this.fromUpstream(input);
    if (upstream) return this.report(upstream, upstream.kind === 'user' ? 'upstream' : 'rejected');
    if (this.issuers.size === 0) return NONE;
    const token = bearerToken(input.headers.authorization);
    if (token === undefined) return NONE;
    const now = this.now();
    const hit = this.verified.get(token);
    if (hit) {
      if (hit.untilMs > now) return this.report(hit.outcome, 'cached');
      this.verified.delete(token);
    }
    const bad = this.rejected.get(token);
    if (bad) {
      if (bad.untilMs > now) return this.report(bad.outcome, 'rejected');
      this.rejected.delete(token);
    }
    let pending = this.inFlight.get(token);
    if (!pending) {
      pending = this.verify(token).finally(() => this.inFlight.delete(token));
      this.inFlight.set(token, pending);
    }
    return pending;
  }

  private report(outcome: IdentityOutcome, result: JwtResult): IdentityOutcome {
    this.options.onResult?.(result);
    return outcome;
  }

  private async verify(token: string): Promise<IdentityOutcome> {
    let issuer: IssuerRuntime | undefined;
    try {
      const iss = decodeJwt(token).iss;
      issuer = typeof iss === 'string' ? this.issuers.get(iss) : undefined;
    } catch {
      return this.remember(token, this.unauthenticated('the bearer token is not a well-formed JWT'), true);
    }
    if (!issuer)
      return this.remember(token, this.unauthenticated('the token was not issued by a trusted issuer'), true);
    const s = issuer.settings;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, issuer.getKey, {
        issuer: s.issuer,
        audience: s.audiences,
        algorithms: s.algorithms,
        clockTolerance: Math.floor(s.clockSkewMs / 1000),
        requiredClaims: ['exp'],
        currentDate: new Date(this.now()),
      }));
    } catch (err) {
      return this.verifyFailure(token, s.issuer, err as Error);
    }
    const principal = claimsToPrincipal(payload as Record<string, unknown>, s.mapping);
    if (typeof principal === 'string') return this.remember(token, this.unauthenticated(principal), true);
    const outcome: IdentityOutcome = { kind: 'user', principal, via: 'token' };
    const untilMs = (payload.exp as number) * 1000 + s.clockSkewMs;
    boundedSet(
      this.verified,
      token,
      { outcome: { kind: 'user', principal, via: 'cached' }, untilMs },
      MAX_VERIFIED_TOKENS,
    );
    return this.report(outcome, 'verified');
  }

  private verifyFailure(token: string, issuer: string, err: Error): IdentityOutcome {
    if (err instanceof errors.JWTExpired)
      return this.remember(token, this.unauthenticated('the token has expired'), true);
    if (err instanceof errors.JWTClaimValidationFailed) {
      const permanent = err.claim !== 'nbf';
      const message =
        err.claim === 'aud'
          ? 'the token was not issued for this audience'
          : err.claim === 'nbf'
            ? 'the token is not valid yet'
            : `the token's "${err.claim}" claim is not acceptable (${err.reason})`;
      return this.remember(token, this.unauthenticated(message), permanent);
    }
    if (err instanceof errors.JOSEAlgNotAllowed)
      return this.remember(
        token,
        this.unauthenticated('the token is signed with an algorithm that is not allowed'),
        true,
      );
    if (err instanceof errors.JWSSignatureVerificationFailed)
      return this.remember(token, this.unauthenticated('the token signature is invalid'), true);
    if (err instanceof WeakKeyError) return this.remember(token, this.unauthenticated(err.message), true);
    if (err instanceof KeysUnavailableError) {
      return this.report(
        {
          kind: 'rejected',
          reason: 'identity_unavailable',
          message: `the signing keys of ${issuer} could not be fetched: ${err.message}`,
        },
        'unavailable',
      );
    }
    // Unknown kid: the issuer may be rotating keys; the key set was refetched (outside its cooldown) already. Not remembered.
    if (err instanceof errors.JWKSNoMatchingKey)
      return this.report(
        this.unauthenticated('no signing key of the issuer matches the token (unknown key id)'),
        'rejected',
      );
    if (err instanceof errors.JWKSMultipleMatchingKeys)
      return this.remember(
        token,
        this.unauthenticated('several signing keys match the token; it must name its key id (kid)'),
        true,
      );
    if (
      err instanceof errors.JWSInvalid ||
      err instanceof errors.JWTInvalid ||
      err instanceof errors.JOSENotSupported
    ) {
      return this.remember(token, this.unauthenticated('the bearer token is not a well-formed signed JWT'), true);
    }
    // Timeouts, refused connections, a non-JSON key set: the issuer, not the caller, is at fault.
    return this.report(
      {
        kind: 'rejected',
        reason: 'identity_unavailable',
        message: `the signing keys of ${issuer} could not be fetched: ${err.message}`,
      },
      'unavailable',
    );
  }

  private remember(token: string, outcome: IdentityOutcome, permanent: boolean): IdentityOutcome {
    if (permanent)
      boundedSet(this.rejected, token, { outcome, untilMs: this.now() + REJECTED_TTL_MS }, MAX_REJECTED_TOKENS);
    return this.report(outcome, 'rejected');
  }

  unauthenticated(description: string): IdentityOutcome {
    return {
      kind: 'rejected',
      reason: 'unauthenticated',
      message: description,
      wwwAuthenticate: bearerChallenge(this.settings.realm, description),
    };
  }

  /**
   * A payload verified by Envoy, when we are configured to trust one; undefined when none is present.
   * Metadata comes from Envoy's own jwt_authn filter; the header form only from the configured
   * principals (anyone else could have written it). A trusted payload must carry `exp` and come
   * from an accepted issuer: it stands in for a token we did not verify ourselves.
   */
  private fromUpstream(input: RequestModel): IdentityOutcome | undefined {
    let payload: Record<string, unknown> | undefined;
    const accepted = this.upstreamIssuers();
    if (this.settings.upstreamMetadata) {
      const found = metadataPayload(input.filterMetadata[JWT_AUTHN_NAMESPACE], accepted);
      if (found === 'unaccepted')
        return this.unauthenticated('the verified token was not issued by a configured issuer');
      payload = found;
    }
    const header = this.settings.upstreamHeader;
    if (!payload && header && this.settings.upstreamHeaderPrincipals?.has(input.source.principal)) {
      const raw = input.headers[header];
      if (raw !== undefined) {
        const decoded = decodePayloadHeader(raw);
        if (!decoded) return this.unauthenticated(`the ${header} header does not hold a base64url JSON payload`);
        payload = decoded;
      }
    }
    if (!payload) return undefined;
    const iss = typeof payload.iss === 'string' ? payload.iss : undefined;
    if (iss === undefined || !accepted.has(iss))
      return this.unauthenticated('the verified token was not issued by a configured issuer');
    if (typeof payload.exp !== 'number' || !Number.isFinite(payload.exp))
      return this.unauthenticated('the verified token has no "exp" claim');
    // Envoy checked exp when it verified; a payload replayed later must still be in date.
    if (payload.exp * 1000 + this.settings.clockSkewMs <= this.now())
      return this.unauthenticated('the token has expired');
    const mapping = this.issuers.get(iss)?.settings.mapping ?? this.defaultMapping();
    const principal = claimsToPrincipal(payload, mapping);
    if (typeof principal === 'string') return this.unauthenticated(principal);
    return { kind: 'user', principal, via: 'upstream' };
  }

  private upstreamIssuers(): ReadonlySet<string> {
    return this.settings.upstreamIssuers ?? new Set(this.issuers.keys());
  }

  private defaultMapping(): ClaimMapping {
    return this.settings.issuers[0]?.mapping ?? DEFAULT_CLAIM_MAPPING;
  }
}

/** `Bearer <token>` (scheme case-insensitive); undefined for no header or another scheme (Basic is not ours to judge). */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(header);
  if (m) return m[1];
  // "Bearer" with nothing usable after it is a broken bearer credential, not another scheme.
  return /^\s*bearer\b/i.test(header) ? '' : undefined;
}

/** RFC 6750 §3 challenge; the description is ours, quotes and backslashes removed to keep it a valid quoted-string. */
export function bearerChallenge(realm: string, description: string): string {
  const q = (s: string) => s.replace(/["\\]/g, '');
  return `Bearer realm="${q(realm)}", error="invalid_token", error_description="${q(description)}"`;
}

/** The payload of an accepted issuer; 'unaccepted' when jwt_authn verified only tokens of other issuers. */
function metadataPayload(
  ns: unknown,
  accepted: ReadonlySet<string>,
): Record<string, unknown> | 'unaccepted' | undefined {
  if (!ns || typeof ns !== 'object') return undefined;
  let seen = false;
  for (const v of Object.values(ns as Record<string, unknown>)) {
    if (!v || typeof v !== 'object' || Array.isArray(v)) continue;
    const p = v as Record<string, unknown>;
    if (typeof p.iss === 'string' && accepted.has(p.iss)) return p;
    seen = true;
  }
  return seen ? 'unaccepted' : undefined;
}

function decodePayloadHeader(raw: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(raw.trim(), 'base64url').toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function boundedSet<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  if (map.size >= max && !map.has(key)) map.delete(map.keys().next().value as K);
  map.set(key, value);
}
