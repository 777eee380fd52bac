/**
 * The decision cache key: the policy-set version, the entity base (Envoy
 * checks see the server's action groups, `authz eval` requests do not), the
 * full uids (type and id) of principal, action and resource, the request's
 * own entities whenever any entity data is observable, and exactly the part
 * of the context the evaluated slice can observe (cedar/context-key.ts). Two requests
 * with equal keys send Cedar requests that the slice's policies cannot tell
 * apart (the static entities follow from the version; the context is the same
 * wherever it is read, and where a string is only tested against literals, the
 * test outcomes are the same), so they get the same answer. Fields no policy
 * reads stay out and do not split entries.
 *
 * The cache holds a fixed-size digest of that key, not the key: SHA-256 of a
 * per-process random salt followed by the key, 32 bytes kept as a 32-character
 * one-byte string (~48 bytes of heap instead of the key's ~600). Why a digest
 * cannot give a wrong answer (the argument docs/performance.md repeats):
 *
 * - Equal keys give equal digests, so nothing that hit before misses now.
 * - Different keys give different digests unless SHA-256 collides on them.
 *   The key is one JSON.stringify of a tuple, so it is unambiguous whatever the
 *   ids hold (a JWT subject can hold any character), and JSON.stringify writes
 *   a lone surrogate as an escape (`\udc00`), so the key is well-formed UTF-16
 *   and its UTF-8 encoding, which is what is hashed, is one-to-one: two keys
 *   never reach SHA-256 as the same bytes.
 * - By chance: the chance that any two of n different keys share a 256-bit
 *   digest is below n²/2²⁵⁷; at the largest cache the configuration allows
 *   (50,000,000 entries) that is below 2⁻²⁰⁵ per cache lifetime, far below the
 *   odds of a memory bit flip deciding a request.
 * - On purpose: a caller controls paths, headers and subjects, so it could try
 *   to make its denied request share the digest of an allowed one. That needs
 *   a second preimage or a collision of SHA-256 (no attack is known below
 *   2¹²⁸ work for a collision), and the salt is drawn at start and never leaves
 *   the process, so candidate keys cannot even be computed offline.
 *
 * A non-cryptographic hash would be faster but would lose the last point;
 * truncating SHA-256 to 128 bits would put a birthday collision at 2⁶⁴ work,
 * within reach of a large attacker. Measured cost: `npx tsx bench/cache-cost.ts`.
 */
import { hash, randomBytes } from 'node:crypto';

/** An entity uid as the key names it (principal, action, resource). */
export interface KeyUid {
  readonly type: string;
  readonly id: string;
}

/** Drawn once per process: digests are never compared across processes, and no one outside can compute them. */
const SALT = randomBytes(32).toString('base64');

export function decisionCacheKey(
  version: string,
  base: string,
  principal: KeyUid,
  action: KeyUid,
  resource: KeyUid,
  /** The request's entities as sent (attributes projected), or 0 when no entity data is observable. */
  requestEntities: readonly unknown[] | 0,
  /** `contextKey(...)`: the projected context, with strings only tested against literals reduced to the outcomes. */
  context: unknown,
): string {
  return digestKey(
    JSON.stringify([
      SALT,
      version,
      base,
      principal.type,
      principal.id,
      action.type,
      action.id,
      resource.type,
      resource.id,
      requestEntities,
      context,
    ]),
  );
}

/**
 * SHA-256 of a key string (UTF-8), as a 32-character one-byte string. The key
 * must be well-formed UTF-16 (JSON.stringify output is), or two keys could
 * encode to the same bytes.
 */
export function digestKey(key: string): string {
  return hash('sha256', key, 'binary');
}
