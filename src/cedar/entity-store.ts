/**
 * Static entities (entities.json) indexed so that a request sends Cedar only the
 * entities it can reach: Cedar reaches an entity through `in` (parents, transitively)
 * or by dereferencing an entity-valued attribute. We precompute, per entity, the
 * closure over both, so the per-request work is a few map lookups.
 */
import type { CedarValueJson, EntityJson, EntityUidJson } from './cedar-wasm.js';

/** What JSON.stringify escapes in a string: quote, backslash, control characters, surrogates (lone ones). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are among what JSON.stringify escapes.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

export function uidKey(type: string, id: string): string {
  // The same text as JSON.stringify(id) without its call when nothing needs escaping (ids are plain names):
  // a request's principal, action and resource keys are made on every miss.
  return NEEDS_ESCAPE.test(id) ? `${type}::${JSON.stringify(id)}` : `${type}::"${id}"`;
}

export function uidOf(ref: EntityUidJson): { type: string; id: string } {
  return '__entity' in ref ? ref.__entity : ref;
}

export function entityKey(e: EntityJson): string {
  const { type, id } = uidOf(e.uid);
  return uidKey(type, id);
}

/**
 * A request's entity over the bundle's entity with the same uid: the request's
 * attributes and tags over the bundle's, the parents of both. (The Envoy mapping
 * relies on it: a workload in entities.json keeps its groups and gains the
 * attributes parsed from its SPIFFE id.)
 */
export function mergeEntity(stat: EntityJson | undefined, req: EntityJson): EntityJson {
  const { type, id } = uidOf(req.uid);
  if (!stat)
    return {
      uid: { type, id },
      attrs: req.attrs ?? {},
      parents: req.parents ?? [],
      ...(req.tags ? { tags: req.tags } : {}),
    };
  const parents = [...(stat.parents ?? [])];
  if (req.parents?.length) {
    const have = new Set(
      parents.map((p) => {
        const u = uidOf(p);
        return uidKey(u.type, u.id);
      }),
    );
    for (const p of req.parents) {
      const u = uidOf(p);
      if (!have.has(uidKey(u.type, u.id))) parents.push(p);
    }
  }
  const tags = stat.tags || req.tags ? { ...stat.tags, ...req.tags } : undefined;
  return { uid: { type, id }, attrs: { ...stat.attrs, ...req.attrs }, parents, ...(tags ? { tags } : {}) };
}

const NO_CLOSURE = Object.freeze({
  entities: Object.freeze([]) as unknown as EntityJson[],
  referenced: Object.freeze(new Set<string>()) as ReadonlySet<string>,
});

export class EntityStore {
  private readonly byKey = new Map<string, EntityJson>();
  private readonly closure = new Map<string, { entities: EntityJson[]; referenced: ReadonlySet<string> }>();

  constructor(entities: EntityJson[]) {
    for (const e of entities) {
      const { type, id } = uidOf(e.uid);
      const key = uidKey(type, id);
      if (this.byKey.has(key)) throw new Error(`entities.json defines ${type}::"${id}" twice`);
      this.byKey.set(key, {
        uid: { type, id },
        attrs: e.attrs ?? {},
        parents: e.parents ?? [],
        ...(e.tags ? { tags: e.tags } : {}),
      });
    }
  }

  /** This store with `extra` entities added; one already here is merged (mergeEntity). */
  withEntities(extra: EntityJson[]): EntityStore {
    const merged = new Map<string, EntityJson>();
    for (const e of this.byKey.values()) merged.set(entityKey(e), e);
    for (const e of extra) {
      const k = entityKey(e);
      merged.set(k, mergeEntity(merged.get(k), e));
    }
    return new EntityStore([...merged.values()]);
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

  /** Uid keys of every entity. */
  keys(): IterableIterator<string> {
    return this.byKey.keys();
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
    return this.closureOf(key).entities;
  }

  /**
   * Every key the closure of `key` points at, including keys of entities the
   * store does not hold (a request may bring those): when none of them is a
   * request entity, the precomputed closure is the whole answer.
   */
  referencedFrom(key: string): ReadonlySet<string> {
    return this.closureOf(key).referenced;
  }

  private closureOf(key: string): { entities: EntityJson[]; referenced: ReadonlySet<string> } {
    if (!this.byKey.has(key)) return NO_CLOSURE;
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
    hit = { entities: out, referenced: seen };
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
    const sink = { add: (k: string) => void keys.push(k) };
    for (const v of Object.values(e.attrs ?? {})) collectEntityRefs(v, sink);
    for (const v of Object.values(e.tags ?? {})) collectEntityRefs(v, sink);
    return keys;
  }
}

/** Uid keys of every entity reference inside a value (to any depth). */
export function collectEntityRefs(v: CedarValueJson, out: { add(key: string): unknown }): void {
  if (v === null || typeof v !== 'object') return;
  if (Array.isArray(v)) {
    for (const x of v) collectEntityRefs(x, out);
    return;
  }
  const rec = v as Record<string, CedarValueJson>;
  const ent = rec.__entity as { type?: unknown; id?: unknown } | undefined;
  if (ent && typeof ent.type === 'string' && typeof ent.id === 'string') {
    out.add(uidKey(ent.type, ent.id));
    return;
  }
  // With a schema, a bare {type, id} record may also denote an entity; include it to stay exact.
  if (typeof rec.type === 'string' && typeof rec.id === 'string') out.add(uidKey(rec.type, rec.id));
  for (const x of Object.values(rec)) collectEntityRefs(x, out);
}
