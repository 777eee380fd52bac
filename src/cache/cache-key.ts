/**
 * The decision cache key: the policy-set version plus exactly what the
 * evaluated slice can observe (projection.ts). Two requests with equal keys
 * send Cedar requests that its policies cannot tell apart (same principal,
 * action, resource and entities, which follow from these and the version; the
 * same context wherever it is read, and where a string is only tested against
 * literals, the same test outcomes), so they get the same answer. Fields no
 * policy reads stay out and do not split entries.
 *
 * One JSON.stringify of a tuple: unambiguous whatever the ids contain (a JWT
 * subject can hold any character), and a single native call.
 */
import type { EntityNeeds } from '../cedar/cedar-request.js';
import type { PrincipalRef } from '../cedar/principal.js';
import { projectEntityAttrs } from '../cedar/projection.js';

export function decisionCacheKey(
  version: string,
  principal: PrincipalRef,
  actionId: string,
  service: string,
  needs: EntityNeeds,
  /** `contextKey(...)`: the projected context, with strings only tested against literals reduced to the outcomes. */
  context: unknown,
): string {
  // The principal's attributes and request-made parents matter only when some policy can look at them.
  const principalData = needs.principal
    ? [needs.attrs ? projectEntityAttrs(principal.attrs, needs.attrs) : principal.attrs, principal.parents.map((p) => `${p.type}::${p.id}`).sort()]
    : 0;
  return JSON.stringify([version, principal.type, principal.id, actionId, service, principalData, context]);
}
