/**
 * The decision cache key: the policy-set version plus exactly what the
 * evaluated slice can observe (projection.ts). Two requests with equal keys
 * send Cedar equal requests (same principal, action, resource, same projected
 * context, same entities, which follow from these and the version), so they
 * get the same answer; fields no policy reads stay out and do not split entries.
 *
 * One JSON.stringify of a tuple: unambiguous whatever the ids contain (a JWT
 * subject can hold any character), and a single native call.
 */
import type { CedarValueJson } from '../cedar/cedar-wasm.js';
import type { EntityNeeds } from '../cedar/cedar-request.js';
import type { PrincipalRef } from '../cedar/principal.js';
import { projectEntityAttrs } from '../cedar/projection.js';

export function decisionCacheKey(
  version: string,
  principal: PrincipalRef,
  actionId: string,
  service: string,
  needs: EntityNeeds,
  context: Record<string, CedarValueJson>,
): string {
  // The principal's attributes and request-made parents matter only when some policy can look at them.
  const principalData = needs.principal
    ? [needs.attrs ? projectEntityAttrs(principal.attrs, needs.attrs) : principal.attrs, principal.parents.map((p) => `${p.type}::${p.id}`).sort()]
    : 0;
  return JSON.stringify([version, principal.type, principal.id, actionId, service, principalData, context]);
}
