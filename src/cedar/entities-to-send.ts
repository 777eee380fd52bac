/**
 * Which entities a request sends Cedar. Cedar reaches an entity's data only
 * through a uid it holds: a scope variable (principal, action, resource), an
 * entity literal in a policy, a uid in the context, or a uid found in the
 * attributes or tags of an entity it already reached; `in` follows parents.
 * So the entities reachable from those roots, over parents, attributes and
 * tags, are all Cedar can observe: sending exactly them answers as sending
 * every entity does.
 */
import type { EntityJson } from './cedar-wasm.js';
import { entityKey, mergeEntity, type EntityStore } from './entity-store.js';

/**
 * Everything reachable from `roots` (uid keys), where `overlay` holds the
 * request's own entities (merged over the store's, see mergeEntity).
 */
export function entitiesToSend(
  store: EntityStore,
  overlay: ReadonlyMap<string, EntityJson> | undefined,
  roots: Iterable<string>,
): EntityJson[] {
  const out: EntityJson[] = [];
  const seen = new Set<string>();
  const stack: string[] = [...roots];
  while (stack.length > 0) {
    const k = stack.pop()!;
    if (seen.has(k)) continue;
    seen.add(k);
    const own = overlay?.get(k);
    const stat = store.getByKey(k);
    if (own) {
      const merged = mergeEntity(stat, own);
      out.push(merged);
      for (const n of store.neighbours(merged)) if (!seen.has(n)) stack.push(n);
      continue;
    }
    if (!stat) continue;
    out.push(stat);
    if (overlay && overlay.size > 0 && touches(store.referencedFrom(k), overlay)) {
      // The request brings an entity this closure points at: walk it step by step, through the merged forms.
      for (const n of store.neighbours(stat)) if (!seen.has(n)) stack.push(n);
      continue;
    }
    // The store's closure, precomputed once per entity.
    for (const e of store.reachableFrom(k)) {
      const ek = entityKey(e);
      if (seen.has(ek)) continue;
      seen.add(ek);
      out.push(e);
    }
  }
  return out;
}

function touches(keys: ReadonlySet<string>, overlay: ReadonlyMap<string, EntityJson>): boolean {
  if (overlay.size < keys.size) {
    for (const k of overlay.keys()) if (keys.has(k)) return true;
    return false;
  }
  for (const k of keys) if (overlay.has(k)) return true;
  return false;
}
