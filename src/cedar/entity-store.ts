/**
 * Static entities (entities.json) indexed so that a request sends Cedar only the
 * entities it can reach: Cedar reaches an entity through `in` (parents, transitively)
 * or by dereferencing an entity-valued attribute. We precompute, per entity, the
 * closure over both, so the per-request work is a few map lookups.
 */
import type { CedarValueJson, EntityJson, EntityUidJson } from './cedar-wasm.js';

export function uidKey(type: string, id: string): string {
  return `${type}::${JSON.stringify(id)}`;
}

export function uidOf(ref: EntityUidJson): { type: string; id: string } {
  return '__entity' in ref ? ref.__entity : ref;
}

const NOTHING_REACHABLE: EntityJson[] = Object.freeze([]) as unknown as EntityJson[];

export class EntityStore {
  private readonly byKey = new Map<string, EntityJson>();
  private readonly closure = new Map<string, EntityJson[]>();

  constructor(entities: EntityJson[]) {
    for (const e of entities) {
      const { type, id } = uidOf(e.uid);
      const key = uidKey(type, id);
      if (this.byKey.has(key)) throw new Error(`entities.json defines ${type}::"${id}" twice`);
      this.byKey.set(key, { uid: { type, id }, attrs: e.attrs ?? {}, parents: e.parents ?? [], ...(e.tags ? { tags: e.tags } : {}) });
    }
  }

  get size(): number {
    return this.byKey.size;
  }

  get(type: string, id: string): EntityJson | undefined {
    return this.byKey.get(uidKey(type, id));
  }

  getByKey(key: string): EntityJson | undefined {
    return this.byKey.get(key);
  }

  all(): EntityJson[] {
    return [...this.byKey.values()];
  }

  /**
   * Entities reachable from `key` (excluding itself), each once. Cached for
   * entities of the store only: requests name principals the store has never
   * heard of (every caller, every JWT subject), and caching their (empty)
   * closure grew this map by one entry per distinct caller, without bound.
   */
  reachableFrom(key: string): EntityJson[] {
    if (!this.byKey.has(key)) return NOTHING_REACHABLE;
    let hit = this.closure.get(key);
    if (hit) return hit;
    const seen = new Set<string>([key]);
    const out: EntityJson[] = [];
    const stack = this.neighbours(this.byKey.get(key));
    while (stack.length > 0) {
      const k = stack.pop()!;
      if (seen.has(k)) continue;
      seen.add(k);
      const e = this.byKey.get(k);
      if (!e) continue;
      out.push(e);
      stack.push(...this.neighbours(e));
    }
    hit = out;
    this.closure.set(key, hit);
    return hit;
  }

  /** Keys an entity points at: parents plus entity references inside attributes and tags. */
  neighbours(e: EntityJson | undefined): string[] {
    if (!e) return [];
    const keys: string[] = [];
    for (const p of e.parents ?? []) {
      const { type, id } = uidOf(p);
      keys.push(uidKey(type, id));
    }
    for (const v of Object.values(e.attrs ?? {})) collectEntityRefs(v, keys);
    for (const v of Object.values(e.tags ?? {})) collectEntityRefs(v, keys);
    return keys;
  }
}

function collectEntityRefs(v: CedarValueJson, out: string[]): void {
  if (v === null || typeof v !== 'object') return;
  if (Array.isArray(v)) {
    for (const x of v) collectEntityRefs(x, out);
    return;
  }
  const rec = v as Record<string, CedarValueJson>;
  const ent = rec.__entity as { type?: unknown; id?: unknown } | undefined;
  if (ent && typeof ent.type === 'string' && typeof ent.id === 'string') {
    out.push(uidKey(ent.type, ent.id));
    return;
  }
  // With a schema, a bare {type, id} record may also denote an entity; include it to stay exact.
  if (typeof rec.type === 'string' && typeof rec.id === 'string') out.push(uidKey(rec.type, rec.id));
  for (const x of Object.values(rec)) collectEntityRefs(x, out);
}
