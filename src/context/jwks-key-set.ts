/**
 * An issuer's signing keys (JWKS), local or fetched, with bounded cost.
 *
 * jose's remote key set refetches on every unknown `kid` once its cooldown has
 * passed after a *successful* fetch; while the issuer fails, every token with
 * an unknown kid starts a new fetch (a flood of made-up kids is a flood of
 * fetches), and a hanging issuer holds each check for the whole fetch timeout.
 * Here:
 *
 * - at most one fetch starts per cooldown, whatever the outcome (failures and
 *   timeouts included), and at most one is in flight per issuer: concurrent
 *   lookups share it;
 * - a lookup that needs a fetch the cooldown forbids answers at once: "unknown
 *   key id" (401) when the last fetch succeeded, "keys unavailable" (503) when
 *   it failed; the caller bounds its own wait by the request's deadline;
 * - weak keys (RSA under 2048 bits, symmetric keys) are dropped when a set is
 *   loaded, and a token naming only such a key is refused (401) without a fetch.
 */
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWK, type JWTVerifyGetKey } from 'jose';

/** NIST SP 800-131A: RSA keys below 2048 bits are not acceptable for signatures. */
export const MIN_RSA_BITS = 2048;
/** A key set larger than this is not a key set (and would be held in memory). */
export const MAX_JWKS_BYTES = 1024 * 1024;

/** The key the token names is too weak to trust: the token is refused (401), no fetch can fix it. */
export class WeakKeyError extends Error {
  override name = 'WeakKeyError';
}

/** The issuer's keys could not be fetched (now or at the last attempt): the issuer is at fault (503). */
export class KeysUnavailableError extends Error {
  override name = 'KeysUnavailableError';
}

export interface UsableKeys {
  jwks: JSONWebKeySet;
  /** kid → why that key was dropped. */
  weak: Map<string, string>;
}

function rsaBits(n: unknown): number {
  if (typeof n !== 'string') return 0;
  const bytes = Buffer.from(n, 'base64url');
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return (bytes.length - i) * 8 - Math.clz32(bytes[i] ?? 0) + 24;
}

/** The keys of `jwks` fit to verify tokens with; the others, by kid, with the reason. */
export function usableKeys(jwks: JSONWebKeySet): UsableKeys {
  const keys: JWK[] = [];
  const weak = new Map<string, string>();
  for (const k of jwks.keys) {
    let why: string | undefined;
    if (k.kty === 'oct') why = 'a symmetric key';
    else if (k.kty === 'RSA') {
      const bits = rsaBits(k.n);
      if (bits < MIN_RSA_BITS) why = `an RSA key of ${bits} bits (at least ${MIN_RSA_BITS} are required)`;
    }
    if (why === undefined) keys.push(k);
    else if (typeof k.kid === 'string') weak.set(k.kid, why);
  }
  // A kid shared by a usable key is not "only weak".
  for (const k of keys) if (typeof k.kid === 'string') weak.delete(k.kid);
  return { jwks: { keys }, weak };
}

/** Parse a fetched body as a JWKS; throws with a message naming what is wrong. */
export function parseJwks(text: string): JSONWebKeySet {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error('the key set is not JSON');
  }
  const keys = (v as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.some((k) => !k || typeof k !== 'object' || Array.isArray(k)))
    throw new Error('the key set is not a JWKS ({"keys": [...]})');
  return v as JSONWebKeySet;
}

export interface KeySetOptions {
  timeoutMs: number;
  cooldownMs: number;
  now?: () => number;
}

/** Keys that never change (a JWKS file): weak ones dropped once. */
export class StaticKeySet {
  private readonly local: JWTVerifyGetKey;
  private readonly weak: Map<string, string>;

  constructor(jwks: JSONWebKeySet) {
    const usable = usableKeys(jwks);
    this.local = createLocalJWKSet(usable.jwks);
    this.weak = usable.weak;
  }

  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    try {
      return await this.local(header, token);
    } catch (err) {
      throw weakOr(err, header.kid, this.weak);
    }
  };
}

function weakOr(err: unknown, kid: string | undefined, weak: Map<string, string>): unknown {
  if (err instanceof errors.JWKSNoMatchingKey && kid !== undefined && weak.has(kid)) {
    return new WeakKeyError(`the token's signing key "${kid}" is not trusted: ${weak.get(kid)}`);
  }
  return err;
}

export class RemoteKeySet {
  private local: JWTVerifyGetKey | undefined;
  private weak = new Map<string, string>();
  private inFlight: Promise<void> | undefined;
  /** When the last fetch started (-Infinity: never). */
  private lastAttemptMs = -Infinity;
  private lastError: Error | undefined;
  private readonly now: () => number;
  /** Fetches started (admin and tests). */
  fetches = 0;

  constructor(
    readonly url: string,
    private readonly options: KeySetOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Start a fetch unless one is in flight (join it) or the cooldown since the
   * last one has not passed (nothing to wait for). Never throws: the outcome is
   * kept for lookups.
   */
  refresh(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    if (this.now() - this.lastAttemptMs < this.options.cooldownMs) return Promise.resolve();
    this.lastAttemptMs = this.now();
    this.fetches++;
    this.inFlight = this.fetchOnce().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  /** Why the last fetch failed, or undefined after a success. */
  get error(): Error | undefined {
    return this.lastError;
  }

  private async fetchOnce(): Promise<void> {
    try {
      const res = await fetch(this.url, {
        signal: AbortSignal.timeout(this.options.timeoutMs),
        redirect: 'error',
        headers: { accept: 'application/json' },
      });
      if (res.status !== 200) {
        void res.body?.cancel();
        throw new Error(`the key set answered HTTP ${res.status}`);
      }
      const declared = Number(res.headers.get('content-length') ?? 0);
      if (declared > MAX_JWKS_BYTES) {
        void res.body?.cancel();
        throw new Error(`the key set is larger than ${MAX_JWKS_BYTES} bytes`);
      }
      const text = await res.text();
      if (text.length > MAX_JWKS_BYTES) throw new Error(`the key set is larger than ${MAX_JWKS_BYTES} bytes`);
      const usable = usableKeys(parseJwks(text));
      this.local = createLocalJWKSet(usable.jwks);
      this.weak = usable.weak;
      this.lastError = undefined;
    } catch (err) {
      const e = err as Error;
      this.lastError = e.name === 'TimeoutError' ? new Error(`no answer within ${this.options.timeoutMs} ms`) : e;
    }
  }

  /**
   * jose's key lookup: the cached keys first; for an unknown kid, one fetch
   * (shared, and only outside the cooldown), then the keys again.
   */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    if (this.local) {
      try {
        return await this.local(header, token);
      } catch (err) {
        if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
        // Keys dropped as weak stay dropped: refetching cannot make them strong.
        if (header.kid !== undefined && this.weak.has(header.kid)) throw weakOr(err, header.kid, this.weak);
      }
    }
    await this.refresh();
    if (this.lastError || !this.local) {
      throw new KeysUnavailableError(this.lastError?.message ?? 'not fetched yet');
    }
    try {
      return await this.local(header, token);
    } catch (err) {
      throw weakOr(err, header.kid, this.weak);
    }
  };
}
