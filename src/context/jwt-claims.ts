/**
 * Verified JWT claims → the Cedar principal `User::"<sub>"`: every claim
 * Cedar can represent becomes an attribute, and the configured claims
 * (`groups` → Group, `roles` → Role by default) become parents, so a policy
 * can say `principal in Group::"admins"` for a logged-in user.
 */
import type { CedarValueJson } from '../cedar/cedar-wasm.js';
import type { PrincipalRef } from './principal.js';

export const USER_TYPE = 'User';
export const DEFAULT_PRINCIPAL_CLAIM = 'sub';
export const DEFAULT_PARENT_CLAIMS: Readonly<Record<string, string>> = Object.freeze({
  groups: 'Group',
  roles: 'Role',
});
/** Deeper claim structures are cut here; no policy reads that far and a hostile token could nest deeply. */
const MAX_CLAIM_DEPTH = 8;
/** Parents taken from one claim; a token listing thousands of groups is refused, not expanded. */
export const MAX_PARENTS_PER_CLAIM = 256;

export interface ClaimMapping {
  /** Claim whose string value is the User id. */
  principalClaim: string;
  /** Claim path (dots for nesting, e.g. "realm_access.roles") → parent entity type. */
  parentClaims: Readonly<Record<string, string>>;
}

export const DEFAULT_CLAIM_MAPPING: ClaimMapping = Object.freeze({
  principalClaim: DEFAULT_PRINCIPAL_CLAIM,
  parentClaims: DEFAULT_PARENT_CLAIMS,
});

export function claimAt(claims: Record<string, unknown>, path: string): unknown {
  if (!path.includes('.')) return claims[path];
  let v: unknown = claims;
  for (const seg of path.split('.')) {
    if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[seg];
  }
  return v;
}

/**
 * A JSON claim as a Cedar value, or undefined when Cedar has no exact form for
 * it: fractions (Cedar has only 64-bit integers), nulls, too-deep structures.
 * Keys starting with "__" are dropped because Cedar's JSON reads `__entity`
 * and `__extn` as escapes, and a claim must never smuggle in an entity reference.
 */
export function claimToCedar(v: unknown, depth = 0): CedarValueJson | undefined {
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : undefined;
  if (depth >= MAX_CLAIM_DEPTH || v === null || typeof v !== 'object') return undefined;
  if (Array.isArray(v)) {
    const out: CedarValueJson[] = [];
    for (const x of v) {
      const c = claimToCedar(x, depth + 1);
      if (c !== undefined) out.push(c);
    }
    return out;
  }
  const rec: Record<string, CedarValueJson> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (k.startsWith('__')) continue;
    const c = claimToCedar(x, depth + 1);
    if (c !== undefined) rec[k] = c;
  }
  return rec;
}

/** A claim holding names: an array of strings, or one space-separated string (like OAuth `scope`). */
export function namesIn(v: unknown): string[] {
  if (typeof v === 'string') return v.split(/\s+/).filter(Boolean);
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string' && x.length > 0);
  return [];
}

/** The principal for a verified payload, or a message saying why there is none. */
export function claimsToPrincipal(
  claims: Record<string, unknown>,
  mapping: ClaimMapping = DEFAULT_CLAIM_MAPPING,
): PrincipalRef | string {
  const id = claimAt(claims, mapping.principalClaim);
  if (typeof id !== 'string' || id === '')
    return `the token has no "${mapping.principalClaim}" claim to identify the user`;
  const attrs: Record<string, CedarValueJson> = {};
  for (const [k, v] of Object.entries(claims)) {
    if (k.startsWith('__')) continue;
    const c = claimToCedar(v);
    if (c !== undefined) attrs[k] = c;
  }
  const parents: { type: string; id: string }[] = [];
  for (const [claim, type] of Object.entries(mapping.parentClaims)) {
    const names = namesIn(claimAt(claims, claim));
    if (names.length > MAX_PARENTS_PER_CLAIM)
      return `the token's "${claim}" claim lists more than ${MAX_PARENTS_PER_CLAIM} entries`;
    for (const name of names) parents.push({ type, id: name });
  }
  return { type: USER_TYPE, id, attrs, parents };
}
