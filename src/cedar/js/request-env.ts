/**
 * What one evaluation reads: the request's principal, action, resource and
 * context, and the entities (the set's store with the request's own entities
 * over it, merged as entity-store.ts `mergeEntity` merges them: the request's
 * attributes and tags over the store's, the parents of both). Nothing is
 * copied up front: an attribute is looked up when a policy reads it.
 *
 * Ancestor sets of the store's entities are computed once per store (lazily,
 * per entity) and shared by every request; a request that brings entities
 * gets its own, computed over the merged parents when `in` needs them.
 */
import type { CedarValueJson, EntityJson } from '../cedar-wasm.js';
import { uidKey, uidOf, type EntityStore } from '../entity-store.js';
import { type EntityUid, JsonRecord, type RecordValue } from './values.js';

const hasOwn = Object.prototype.hasOwnProperty;
const NONE: ReadonlySet<string> = new Set();

/** Transitive parents of the store's entities, computed on first use and kept with the store. */
export class StoreAncestors {
  private readonly memo = new Map<string, ReadonlySet<string>>();
  constructor(readonly store: EntityStore) {}

  of(key: string): ReadonlySet<string> {
    const hit = this.memo.get(key);
    if (hit) return hit;
    if (!this.store.getByKey(key)) return NONE;
    const out = closure(key, (k) => this.store.getByKey(k)?.parents);
    this.memo.set(key, out);
    return out;
  }
}

const indexes = new WeakMap<EntityStore, StoreAncestors>();

export function ancestorsOfStore(store: EntityStore): StoreAncestors {
  let a = indexes.get(store);
  if (!a) indexes.set(store, (a = new StoreAncestors(store)));
  return a;
}

function closure(
  key: string,
  parentsOf: (k: string) => readonly EntityJson['parents'][number][] | undefined,
): Set<string> {
  const out = new Set<string>();
  const stack: string[] = [];
  const push = (k: string): void => {
    for (const p of parentsOf(k) ?? []) {
      const u = uidOf(p);
      stack.push(uidKey(u.type, u.id));
    }
  };
  push(key);
  while (stack.length > 0) {
    const k = stack.pop()!;
    if (out.has(k)) continue;
    out.add(k);
    push(k);
  }
  return out;
}

export const MISSING = Symbol('missing');

export class RequestEnv {
  readonly context: RecordValue;
  private overAncestors?: Map<string, ReadonlySet<string>>;

  constructor(
    readonly principal: EntityUid,
    readonly action: EntityUid,
    readonly resource: EntityUid,
    context: Readonly<Record<string, CedarValueJson>>,
    private readonly store: EntityStore,
    private readonly ancestors: StoreAncestors,
    /** The request's own entities by uid key (absent or empty when it brings none). */
    private readonly overlay: ReadonlyMap<string, EntityJson> | undefined,
  ) {
    this.context = new JsonRecord(context);
  }

  /** Whether the entity is in the merged store (attribute access on one that is not is an error). */
  exists(key: string): boolean {
    return this.store.getByKey(key) !== undefined || this.overlay?.has(key) === true;
  }

  /** An attribute's JSON value, MISSING when the entity (or the attribute) is absent. */
  attr(key: string, name: string): CedarValueJson | typeof MISSING {
    const over = this.overlay?.get(key);
    if (over?.attrs && hasOwn.call(over.attrs, name)) return over.attrs[name];
    const e = this.store.getByKey(key);
    if (e?.attrs && hasOwn.call(e.attrs, name)) return e.attrs[name];
    return MISSING;
  }

  tag(key: string, name: string): CedarValueJson | typeof MISSING {
    const over = this.overlay?.get(key);
    if (over?.tags && hasOwn.call(over.tags, name)) return over.tags[name];
    const e = this.store.getByKey(key);
    if (e?.tags && hasOwn.call(e.tags, name)) return e.tags[name];
    return MISSING;
  }

  /** Cedar's `a in b` for entity uid keys: the same entity, or b among a's ancestors. */
  isIn(a: string, b: string): boolean {
    if (a === b) return true;
    return this.ancestorsOf(a).has(b);
  }

  private ancestorsOf(key: string): ReadonlySet<string> {
    const overlay = this.overlay;
    if (overlay === undefined || overlay.size === 0) return this.ancestors.of(key);
    this.overAncestors ??= new Map();
    let hit = this.overAncestors.get(key);
    if (!hit) {
      const store = this.store;
      hit = closure(key, (k) => {
        const s = store.getByKey(k)?.parents;
        const o = overlay.get(k)?.parents;
        if (!o || o.length === 0) return s;
        if (!s || s.length === 0) return o;
        return [...s, ...o];
      });
      this.overAncestors.set(key, hit);
    }
    return hit;
  }
}
