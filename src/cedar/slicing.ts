/**
 * Policy slicing: a request evaluates only the policies whose scope can match
 * its action and resource, preparsed as small sets.
 *
 * Why: `statefulIsAuthorized` evaluates every policy of the set it is given
 * (measured: ~45 µs with 1 policy, ~700 µs with 200, ~2.2 ms with 500). In a
 * mesh most policies name one service, so a request to `orders` needs the
 * `orders` policies plus the ones that name no service.
 *
 * Exactness: Cedar evaluates a policy as `scope && conditions`, left to right,
 * and scope constraints (`==`, `in`, `is` on entity uids) never error. A policy
 * whose action or resource constraint fails for this request is therefore never
 * satisfied and never errors, so leaving it out changes neither the decision,
 * nor the determining policies, nor the errors. Scope is judged against the same
 * hierarchy the request will carry (the server's action groups merged with
 * entities.json), and any constraint form we do not recognise keeps the policy.
 *
 * A slice can be bigger than one preparse should be (a preparse blocks the
 * thread ~0.25–0.5 ms per policy on this machine), so it is split into chunks
 * of at most MAX_POLICIES_PER_PSET and the answers are combined (evaluate.ts).
 * Chunks are identified by their policy ids, so identical chunks (the shared,
 * service-independent policies, or the slice of every unknown service) are
 * preparsed once.
 */
import { cedar, type EntityJson } from './cedar-wasm.js';
import { CONNECT_ACTION, READ_METHODS, WRITE_METHODS } from './action-hierarchy.js';
import type { CompiledPolicy } from './compiled-policy.js';
import { uidKey, uidOf, type EntityStore } from './entity-store.js';
import { acquirePsetId, releasePsetIds } from './pset-ids.js';
import {
  analysePolicies,
  entityNeedsOf,
  readsVolatile,
  unionOfReads,
  type EntityNeeds,
  type ReadSet,
} from './reads.js';

/** At ~0.25–0.5 ms per policy (measured under load), 16 keeps one preparse well under the 10 ms stall budget. */
export const MAX_POLICIES_PER_PSET = 16;
/** A service whose policies fit in one chunk shares that chunk across all actions (fewer preparses, same cost per call). */
export const ACTION_SPLIT_MIN = MAX_POLICIES_PER_PSET;
/** Distinct (action, resource) pairs remembered; random Host headers must not grow memory without bound. */
export const MAX_REMEMBERED_SLICES = 20_000;

/** Policies evaluated together against one projected request. */
export interface SlicePart {
  /** Policies whose action and resource scope match, in set order. */
  readonly matching: readonly CompiledPolicy[];
  /** Preparsed sets to evaluate; together they hold every matching policy. */
  readonly psetIds: readonly string[];
  /** What the matching policies can observe: the projection and the cache key. */
  readonly reads: ReadSet;
  /** Which of the request's entities to send (from `reads`), worked out once. */
  readonly needs: EntityNeeds;
}

export interface Slice extends SlicePart {
  /** False when a matching policy reads a volatile field (time, load). */
  readonly cacheable: boolean;
  /**
   * Present when some matching policies read a volatile field and others do
   * not: the two groups, preparsed in chunks of their own, so the stable
   * group's answer can be cached and only the volatile group evaluated per
   * request (engine.ts). Together they are the whole slice.
   */
  readonly split?: { readonly stable: SlicePart; readonly volatile: SlicePart };
  /** The action, the resource and their ancestors (uid keys): a request entity among them may change the slice. */
  readonly scopeKeys: ReadonlySet<string>;
}

export interface ChunkPlan {
  signature: string;
  policies: CompiledPolicy[];
}

export interface SlicePlan {
  matching: CompiledPolicy[];
  chunks: ChunkPlan[];
  /** Uid keys of the action, the resource and their ancestors the plan was made with. */
  scopeKeys: ReadonlySet<string>;
}

export interface ResourceRef {
  type: string;
  id: string;
}

/** An entity uid (the action of a request is one too: `Action::"GET"`, `Shop::Action::"view"`). */
export type EntityRef = ResourceRef;

type Constraint = {
  op: string;
  entity?: unknown;
  entities?: unknown[];
  entity_type?: string;
  in?: { entity?: unknown };
};

/** The part of a policy slicing looks at; small, so the compile worker sends it apart from the full JSON. */
export interface PolicyScope {
  action: Constraint;
  resource: Constraint;
}

export function scopeOfPolicy(p: Pick<CompiledPolicy, 'json'>): PolicyScope {
  return { action: p.json.action as Constraint, resource: p.json.resource as Constraint };
}

/** The resource id `knownPairs` uses for every service no policy or entity names. */
export const UNKNOWN_SERVICE_ID = '\0unknown-service';

export class SliceRetiredError extends Error {}

export class SliceIndex {
  private readonly ordered: CompiledPolicy[];
  private readonly readsOf = new Map<string, ReadSet>();
  /** Policies that read a volatile field (time, load): their answers are never cached. */
  private readonly volatileIds = new Set<string>();
  private readonly scopeOf = new Map<string, PolicyScope>();
  /** Policies whose resource constraint is `== <uid>`, by uid. */
  private readonly byResource = new Map<string, CompiledPolicy[]>();
  /** Policies whose resource constraint is anything else: candidates for every resource. */
  private readonly shared: CompiledPolicy[] = [];
  private readonly chunks = new Map<string, string>();
  private readonly slices = new Map<string, Slice>();
  private retiredFlag = false;
  /** Union of every policy's reads: used to trim static entities once per version. */
  readonly allReads: ReadSet;

  /**
   * @param prepared per-policy reads and scopes when the compile worker already
   * worked them out (then `json` is not touched here); computed from `json` otherwise.
   */
  constructor(
    policies: Iterable<CompiledPolicy>,
    private readonly entities: EntityStore,
    prepared?: { readsOf: ReadonlyMap<string, ReadSet>; scopes: ReadonlyMap<string, PolicyScope>; allReads: ReadSet },
    /** `lazyPreparse`: preparse a slice's chunks when `psetIds` is first read (the JS engine reads it only to fall back). */
    private readonly options: { lazyPreparse?: boolean } = {},
  ) {
    this.ordered = [...policies].sort((a, b) => a.order - b.order);
    for (const p of this.ordered) {
      const reads = prepared?.readsOf.get(p.id) ?? analysePolicies([p]);
      this.readsOf.set(p.id, reads);
      if (readsVolatile(reads)) this.volatileIds.add(p.id);
      const scope = prepared?.scopes.get(p.id) ?? scopeOfPolicy(p);
      this.scopeOf.set(p.id, scope);
      const r = scope.resource;
      if (r.op === '==' && r.entity) {
        const { type, id } = uidOf(r.entity as never);
        const key = uidKey(type, id);
        let list = this.byResource.get(key);
        if (!list) this.byResource.set(key, (list = []));
        list.push(p);
      } else {
        this.shared.push(p);
      }
    }
    this.allReads = prepared?.allReads ?? unionOfReads(this.readsOf.values());
  }

  get retired(): boolean {
    return this.retiredFlag;
  }

  /**
   * The slice for one request. Preparses only for pairs no compile-time warm-up
   * covered. `overlay` holds the request's own entities (uid key → entity): when
   * one of them is the action, the resource or one of their ancestors, it can
   * change which `in` constraints hold, so the slice is planned over it.
   */
  sliceFor(
    action: EntityRef,
    resource: ResourceRef,
    plan?: SlicePlan,
    overlay?: ReadonlyMap<string, EntityJson>,
  ): Slice {
    if (this.retiredFlag) throw new SliceRetiredError('this policy set was replaced; its preparsed slices are gone');
    const key = `${action.type}\n${action.id}\n${resource.type}\n${resource.id}`;
    const hit = this.slices.get(key);
    if (hit && !(overlay && overlay.size > 0 && touches(hit.scopeKeys, overlay))) return hit;
    if (!hit || !overlay || overlay.size === 0) {
      const slice = this.makeSlice(plan ?? this.plan(action, resource));
      this.remember(key, slice);
      return slice;
    }
    // The request reshapes the hierarchy around its action or resource: plan over it, keyed by the ancestry it gives.
    const overlaid = this.plan(action, resource, overlay);
    const overlaidKey = `${key}\n${[...overlaid.scopeKeys].sort().join('\n')}`;
    const known = this.slices.get(overlaidKey);
    if (known) return known;
    const slice = this.makeSlice(overlaid);
    this.remember(overlaidKey, slice);
    return slice;
  }

  private makeSlice(plan: SlicePlan): Slice {
    const reads = unionOfReads(plan.matching.map((p) => this.readsOf.get(p.id)!));
    const cacheable = !readsVolatile(reads);
    let split: Slice['split'];
    if (!cacheable) {
      // The plan puts matching volatile policies in chunks of their own whenever stable ones match too.
      const isVolatile = (c: ChunkPlan): boolean =>
        c.policies.some((p) => this.volatileIds.has(p.id) && plan.matching.includes(p));
      const volatileChunks = plan.chunks.filter(isVolatile);
      const stableChunks = plan.chunks.filter((c) => !isVolatile(c));
      const volatileMatching = plan.matching.filter((p) => this.volatileIds.has(p.id));
      const stableMatching = plan.matching.filter((p) => !this.volatileIds.has(p.id));
      if (stableMatching.length > 0 && volatileMatching.length > 0 && stableChunks.length > 0) {
        split = Object.freeze({
          stable: this.part(stableMatching, stableChunks),
          volatile: this.part(volatileMatching, volatileChunks),
        });
      }
    }
    return this.part(plan.matching, plan.chunks, { cacheable, ...(split ? { split } : {}), scopeKeys: plan.scopeKeys });
  }

  /**
   * Some matching policies and the preparsed chunks holding them. With
   * `lazyPreparse` the chunks are preparsed when `psetIds` is first read (the
   * JS engine reads it only to fall back); a getter, so never spread a part.
   */
  private part<Extra extends object = object>(
    matching: readonly CompiledPolicy[],
    chunks: readonly ChunkPlan[],
    extra?: Extra,
  ): SlicePart & Extra {
    const reads = unionOfReads(matching.map((p) => this.readsOf.get(p.id)!));
    const preparsed = (): string[] => {
      for (const chunk of chunks) if (!this.chunks.has(chunk.signature)) this.preparseChunk(chunk);
      return chunks.map((c) => this.chunks.get(c.signature)!);
    };
    let psetIds = this.options.lazyPreparse ? undefined : preparsed();
    const index = this;
    return Object.freeze({
      matching,
      get psetIds(): readonly string[] {
        if (psetIds === undefined && index.retiredFlag)
          throw new SliceRetiredError('this policy set was replaced; its preparsed slices are gone');
        psetIds ??= preparsed();
        return psetIds;
      },
      reads,
      needs: entityNeedsOf(reads),
      ...(extra as Extra),
    }) as SlicePart & Extra;
  }

  private remember(key: string, slice: Slice): void {
    if (this.slices.size >= MAX_REMEMBERED_SLICES) this.slices.clear();
    this.slices.set(key, slice);
  }

  /** Which policies a request evaluates, and in which chunks; no Cedar calls. */
  plan(action: EntityRef, resource: ResourceRef, overlay?: ReadonlyMap<string, EntityJson>): SlicePlan {
    const resourceKey = uidKey(resource.type, resource.id);
    const resourceAncestors = this.ancestors(overlay, resourceKey);
    const actionKey = uidKey(action.type, action.id);
    const actionAncestors = this.ancestors(overlay, actionKey);

    const byResource = [
      ...(this.byResource.get(resourceKey) ?? []),
      ...this.shared.filter((p) =>
        scopeMatches(this.scopeOf.get(p.id)!.resource, resource.type, resourceKey, resourceAncestors),
      ),
    ].sort((a, b) => a.order - b.order);
    const actionMatches = (p: CompiledPolicy): boolean =>
      scopeMatches(this.scopeOf.get(p.id)!.action, action.type, actionKey, actionAncestors);
    const matching = byResource.filter(actionMatches);
    // Small per-service slices are shared by every action of that service; policies
    // in it whose action does not match are skipped by Cedar's scope check, exactly.
    const evaluated = byResource.length <= ACTION_SPLIT_MIN ? byResource : matching;
    const scopeKeys = new Set<string>([actionKey, resourceKey, ...actionAncestors, ...resourceAncestors]);
    const namesOneResource = (p: CompiledPolicy): boolean => this.scopeOf.get(p.id)!.resource.op === '==';
    // Matching policies that read a volatile field go in chunks of their own when stable ones match too, so the
    // stable chunks' answer can be cached (Slice.split). A policy whose scope does not match stays with the
    // stable ones whatever it reads: Cedar skips it on scope, before its conditions.
    const matched = new Set(matching);
    const isVolatile = (p: CompiledPolicy): boolean => this.volatileIds.has(p.id) && matched.has(p);
    const volatile = evaluated.filter(isVolatile);
    const stable = volatile.length > 0 ? evaluated.filter((p) => !isVolatile(p)) : evaluated;
    const splitChunks = volatile.length > 0 && stable.some((p) => matched.has(p));
    const chunks = splitChunks
      ? [...chunkPolicies(stable, namesOneResource), ...chunkPolicies(volatile, namesOneResource)]
      : chunkPolicies(evaluated, namesOneResource);
    return { matching, chunks, scopeKeys };
  }

  /**
   * (action, resource) pairs that policies or entities.json name: the compile
   * warms these so that requests to known services never wait for a preparse.
   */
  knownPairs(resourceType: string): Array<[EntityRef, ResourceRef]> {
    const actions = new Map<string, EntityRef>();
    for (const id of [...READ_METHODS, ...WRITE_METHODS, CONNECT_ACTION])
      actions.set(uidKey('Action', id), { type: 'Action', id });
    for (const p of this.ordered) {
      const a = this.scopeOf.get(p.id)!.action;
      if (a.op === '==' && a.entity) {
        const { type, id } = uidOf(a.entity as never);
        actions.set(uidKey(type, id), { type, id });
      }
    }
    const resources = new Map<string, ResourceRef>();
    for (const key of this.byResource.keys()) {
      const p = this.byResource.get(key)![0];
      const { type, id } = uidOf(this.scopeOf.get(p.id)!.resource.entity as never);
      if (type === resourceType) resources.set(key, { type, id });
    }
    for (const e of this.entities.all()) {
      const { type, id } = uidOf(e.uid);
      if (type === resourceType) resources.set(uidKey(type, id), { type, id });
    }
    // One resource no policy names stands for every unknown service.
    resources.set('\0unknown', { type: resourceType, id: UNKNOWN_SERVICE_ID });
    const out: Array<[EntityRef, ResourceRef]> = [];
    for (const r of resources.values()) for (const a of actions.values()) out.push([a, r]);
    return out;
  }

  /** True when this chunk is preparsed already (under this set or shared by an earlier slice). */
  hasChunk(signature: string): boolean {
    return this.chunks.has(signature);
  }

  preparseChunk(chunk: ChunkPlan): void {
    if (this.chunks.has(chunk.signature)) return;
    const staticPolicies: Record<string, string> = {};
    for (const p of chunk.policies) staticPolicies[p.id] = p.text;
    const id = acquirePsetId();
    const answer = cedar.preparsePolicySet(id, { staticPolicies });
    if (answer.type === 'failure') {
      releasePsetIds([id]);
      throw new Error(`Cedar refused a policy slice: ${answer.errors.map((e) => e.message).join('; ')}`);
    }
    this.chunks.set(chunk.signature, id);
  }

  get chunkCount(): number {
    return this.chunks.size;
  }

  /** Drop the slices and hand their preparsed ids back for reuse. */
  retire(): void {
    if (this.retiredFlag) return;
    this.retiredFlag = true;
    releasePsetIds(this.chunks.values());
    this.chunks.clear();
    this.slices.clear();
  }

  /** Transitive parents of `key`, where the request's `overlay` entities add parents to the store's. */
  private ancestors(overlay: ReadonlyMap<string, EntityJson> | undefined, key: string): Set<string> {
    const parentsOf = (k: string): string[] => {
      const keys: string[] = [];
      for (const e of [this.entities.getByKey(k), overlay?.get(k)]) {
        for (const p of e?.parents ?? []) {
          const { type, id } = uidOf(p);
          keys.push(uidKey(type, id));
        }
      }
      return keys;
    };
    const out = new Set<string>();
    const stack = parentsOf(key);
    while (stack.length > 0) {
      const k = stack.pop()!;
      if (out.has(k)) continue;
      out.add(k);
      stack.push(...parentsOf(k));
    }
    return out;
  }
}

function touches(keys: ReadonlySet<string>, overlay: ReadonlyMap<string, EntityJson>): boolean {
  for (const k of overlay.keys()) if (keys.has(k)) return true;
  return false;
}

/** Can this scope constraint hold for the given entity? Unknown forms answer yes. */
export function scopeMatches(c: Constraint, type: string, key: string, ancestors: ReadonlySet<string>): boolean {
  const isIn = (ref: unknown): boolean => {
    const { type: t, id } = uidOf(ref as never);
    const k = uidKey(t, id);
    return k === key || ancestors.has(k);
  };
  switch (c.op) {
    case 'All':
      return true;
    case '==':
      if (!c.entity) return true;
      {
        const { type: t, id } = uidOf(c.entity as never);
        return uidKey(t, id) === key;
      }
    case 'in':
      if (Array.isArray(c.entities)) return c.entities.some(isIn);
      return c.entity ? isIn(c.entity) : true;
    case 'is':
      if (c.entity_type !== type) return false;
      return c.in?.entity ? isIn(c.in.entity) : true;
    default:
      return true;
  }
}

/** Split a slice into preparse-sized chunks, keeping service-independent policies in chunks of their own so they are shared. */
export function chunkPolicies(
  policies: CompiledPolicy[],
  namesOneResource: (p: CompiledPolicy) => boolean,
): ChunkPlan[] {
  if (policies.length <= MAX_POLICIES_PER_PSET) return [chunk(policies)];
  const specific = policies.filter(namesOneResource);
  const shared = policies.filter((p) => !namesOneResource(p));
  const out: ChunkPlan[] = [];
  for (const group of [specific, shared]) {
    for (let i = 0; i < group.length; i += MAX_POLICIES_PER_PSET)
      out.push(chunk(group.slice(i, i + MAX_POLICIES_PER_PSET)));
  }
  return out;
}

function chunk(policies: CompiledPolicy[]): ChunkPlan {
  return { signature: policies.map((p) => p.id).join('\n'), policies };
}
