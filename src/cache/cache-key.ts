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
 * One JSON.stringify of a tuple: unambiguous whatever the ids contain (a JWT
 * subject can hold any character), and a single native call.
 */

/** An entity uid as the key names it (principal, action, resource). */
export interface KeyUid {
  readonly type: string;
  readonly id: string;
}

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
  return JSON.stringify([
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
  ]);
}
