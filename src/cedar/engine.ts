/**
 * The engine's one entry point: decide any Cedar request against a compiled
 * set, through slicing, projection and the decision cache, answering exactly
 * as plain Cedar (`isAuthorized` with every policy, every entity and the whole
 * context) does. The Envoy mapping (pipeline/cedar-request.ts) and `authz eval` call it.
 *
 *   request → slice (action, resource) → cache key → [hit] answer
 *                                                   [miss] project context and entities → Cedar → store
 *
 * A slice whose policies partly read volatile fields (time, load) is decided
 * in two parts (Slice.split): the stable policies through the cache as above,
 * the volatile ones by Cedar on every request, and the two answers combined
 * exactly as Cedar combines one set (evaluate.ts `combineResults`).
 *
 * Why each step is exact: slicing.ts (scope), reads.ts and projection.ts (context
 * fields and attribute names), entities-to-send.ts (which entities), context-key.ts
 * and cache/cache-key.ts (key).
 */
import type { DecisionCache } from '../cache/decision-cache.js';
import { decisionCacheKey } from '../cache/cache-key.js';
import type { CedarValueJson, EntityJson } from './cedar-wasm.js';
import type { CompiledPolicySet } from './compile.js';
import { entitiesToSend } from './entities-to-send.js';
import { collectEntityRefs, entityKey, uidKey, uidOf, type EntityStore } from './entity-store.js';
import { combineResults, evaluate, evaluateSlice, type CedarRequest, type EngineResult } from './evaluate.js';
import { checkRequestValues } from './request-check.js';
import { contextKey } from './context-key.js';
import { projectContext, projectEntityAttrs } from './projection.js';
import type { ReadSet } from './reads.js';
import type { EntityRef, SlicePart } from './slicing.js';

/** A Cedar request as any caller writes it. */
export interface EngineRequest {
  principal: EntityRef;
  action: EntityRef;
  resource: EntityRef;
  context: Record<string, CedarValueJson>;
  /**
   * Entities the request brings, added to the set's. One the set also has is
   * merged: the request's attributes and tags over the set's, the parents of both.
   */
  entities?: EntityJson[];
}

/** Which of the set's entity stores a caller evaluates against. */
export type EntityBase = 'bundle' | 'envoy';

export interface EngineOptions {
  /**
   * Decision cache. A slice that reads no volatile field is cached whole; one
   * that does has its stable policies' answer cached and its volatile ones evaluated per request.
   */
  cache?: DecisionCache<EngineResult>;
  nowMs?: () => number;
  /** `envoy` adds the server's action groups (GET in Action::"read"); `bundle` (default) is the bundle's entities alone. */
  base?: EntityBase;
  /**
   * Cache slices that read per-request fields (time, load) too. Their values are
   * in the key, so answers stay exact; the server leaves them out because such
   * entries would never be hit again, a stream of given requests may repeat them.
   */
  cacheVolatile?: boolean;
}

export type CacheOutcome = 'hit' | 'miss' | 'uncacheable';

export interface EngineOutcome {
  result: EngineResult;
  /**
   * What crossed into Cedar: the projected context and the entities it can reach (absent on a cache hit).
   * For a slice decided in two parts, the volatile part's request (every request sends it).
   * With the JS engine nothing crosses: the request as evaluated, whole context, entities read in place (none listed).
   */
  cedarRequest?: CedarRequest;
  /** `hit` also when only a split slice's stable part was found (its volatile part was still evaluated). */
  cache?: CacheOutcome;
}

/** A request the engine refuses before Cedar sees it (e.g. one entity given twice). */
export class EngineRequestError extends Error {}

/**
 * Decide one request. Throws `EngineRequestError` for a malformed request,
 * `EvaluationError` (evaluate.ts) when Cedar refuses it, `SliceRetiredError`
 * when the set was replaced.
 */
export function decide(set: CompiledPolicySet, req: EngineRequest, options: EngineOptions = {}): EngineOutcome {
  const base = options.base ?? 'bundle';
  req = asCedarReadsIt(set, req, base);
  const overlay = requestOverlay(set, req.entities, base);
  return decideRead(set, req, overlay, base, options);
}

/**
 * The request as Cedar reads it. What a caller writes must be what Cedar would
 * accept whole: a bad value left out by projection must still refuse the request.
 */
function asCedarReadsIt(set: CompiledPolicySet, req: EngineRequest, base: EntityBase): EngineRequest {
  if (base !== 'bundle') return req;
  checkRequestValues(set, req);
  // With a schema, Cedar reads the context against the action's context type (`"10.0.0.1"` as an ipaddr, ...).
  return set.schemaEntities ? { ...req, context: set.schemaEntities.normalizeContext(req.action, req.context) } : req;
}

/**
 * Plain Cedar's answer for the set's enforced policies plus its `@shadow`
 * ones (`isAuthorized` on all of them), for telling whether the shadow
 * policies would change a decision. Never cached, and off the request path.
 *
 * With the JS engine: the enforced policies through the request's slice, the
 * shadow ones (each compiled with the set, see compile.ts) on the request as it
 * is, and the two answers combined as Cedar combines one set (`combineResults`:
 * the two are disjoint parts of it). A shadow policy the JS engine leaves to
 * wasm sends the whole evaluation to wasm on the whole set (`shadowPsetId`),
 * as does the wasm engine.
 */
export function decideWithShadowPolicies(
  set: CompiledPolicySet,
  req: EngineRequest,
  options: { base?: EntityBase } = {},
): EngineResult {
  const base = options.base ?? 'bundle';
  req = asCedarReadsIt(set, req, base);
  const overlay = requestOverlay(set, req.entities, base);
  const shadow = set.shadowPolicies;
  if (set.js && shadow.length > 0) {
    const store = base === 'envoy' ? set.envoyEntities : set.entities;
    const beside = set.js.evaluatePolicies(shadow, req, store, overlay);
    if (beside) return combineResults(set, [decideRead(set, req, overlay, base, {}).result, beside]);
  }
  if (shadow.length === 0) return decideRead(set, req, overlay, base, {}).result;
  return evaluate(set, fullCedarRequest(set, req, base), set.shadowPsetId);
}

/** `decide` for a request already read as Cedar reads it, with its entities by uid key. */
function decideRead(
  set: CompiledPolicySet,
  req: EngineRequest,
  overlay: Map<string, EntityJson> | undefined,
  base: EntityBase,
  options: EngineOptions,
): EngineOutcome {
  const slice = set.slices.sliceFor(req.action, req.resource, undefined, overlay);

  if (slice.cacheable || options.cacheVolatile || !options.cache) {
    const { result, cedarRequest, hit } = decidePart(
      set,
      req,
      overlay,
      base,
      slice,
      options.cache,
      base,
      options.nowMs,
    );
    return { result, cedarRequest, cache: options.cache ? (hit ? 'hit' : 'miss') : undefined };
  }
  if (!slice.split) {
    // Every matching policy reads a volatile field: nothing to cache.
    return { ...decidePart(set, req, overlay, base, slice, undefined, base, options.nowMs), cache: 'uncacheable' };
  }
  // The stable policies' answer through the cache (under keys of its own), the volatile ones' from Cedar.
  const stable = decidePart(
    set,
    req,
    overlay,
    base,
    slice.split.stable,
    options.cache,
    `${base} stable part`,
    options.nowMs,
  );
  const volatile = decidePart(set, req, overlay, base, slice.split.volatile, undefined, base, options.nowMs);
  return {
    result: combineResults(set, [stable.result, volatile.result]),
    cedarRequest: volatile.cedarRequest,
    cache: stable.hit ? 'hit' : 'miss',
  };
}

/**
 * Decide a request against some policies of its slice (the whole slice, or one
 * part of a split one): context and entities projected to what they read,
 * looked up in `cache` first and stored there when given. `keyBase` tells
 * apart entries of answers to different policy groups of the same request.
 */
function decidePart(
  set: CompiledPolicySet,
  req: EngineRequest,
  overlay: Map<string, EntityJson> | undefined,
  base: EntityBase,
  part: SlicePart,
  cache: DecisionCache<EngineResult> | undefined,
  keyBase: string,
  nowMs: (() => number) | undefined,
): { result: EngineResult; cedarRequest?: CedarRequest; hit: boolean } {
  let derived: Derived | undefined;
  let key = '';
  let now = 0;
  if (cache) {
    derived = derive(req, part, overlay);
    const { roots, own, ctxKey } = derived;
    key = decisionCacheKey(
      set.version,
      keyBase,
      req.principal,
      req.action,
      req.resource,
      roots.length > 0 && own ? [...own.values()] : 0,
      ctxKey,
    );
    now = (nowMs ?? Date.now)();
    const hit = cache.get(key, now);
    if (hit !== undefined) return { result: hit, hit: true };
  }
  // The JS engine reads the request where it lies: no projection (without a cache, nothing derived at all).
  // What it leaves (a fallback, counted) goes to wasm below.
  if (set.js) {
    const result = set.js.evaluateSlice(part, req, base === 'envoy' ? set.envoyEntities : set.entities, overlay);
    if (result) {
      if (cache) cache.set(key, freezeResult(result), now);
      return { result, cedarRequest: asEvaluated(req), hit: false };
    }
  }

  const { roots, viaContext, own } = derived ?? derive(req, part, overlay);
  const reads = part.reads;
  const store = viaContext
    ? base === 'envoy'
      ? set.envoyEntities
      : set.entities
    : base === 'envoy'
      ? set.leanEnvoyEntities
      : set.leanEntities;
  const cedarRequest: CedarRequest = {
    principal: req.principal,
    action: req.action,
    resource: req.resource,
    context: projectContext(req.context, reads.context),
    entities: roots.length > 0 ? entitiesToSend(store, own, roots) : [],
  };
  const result = evaluateSlice(set, cedarRequest, part);
  if (cache) cache.set(key, freezeResult(result), now);
  return { result, cedarRequest, hit: false };
}

/** What a part reads of the request: the cache key's context view, and where Cedar can reach entity data. */
interface Derived {
  ctxKey: unknown;
  roots: string[];
  viaContext: boolean;
  /** Request entities in the form Cedar gets them. */
  own: Map<string, EntityJson> | undefined;
}

function derive(req: EngineRequest, part: SlicePart, overlay: Map<string, EntityJson> | undefined): Derived {
  const ctxKey = contextKey(req.context, part.reads.context);
  const { roots, viaContext } = entityRoots(req, part, ctxKey);
  // Only attributes some policy of the part reads. An entity reached through the context is read by
  // `context.x.attr` paths, which projection does not count: send all.
  const own = overlay && overlay.size > 0 ? (viaContext ? overlay : projectOverlay(overlay, part.reads)) : undefined;
  return { ctxKey, roots, viaContext, own };
}

/**
 * The same request with nothing cut: the whole context and every entity (the
 * set's and the request's, merged). For evaluations beside the slice: shadow
 * policies may read what enforced ones do not, and they run off the request path.
 */
export function fullCedarRequest(
  set: CompiledPolicySet,
  req: EngineRequest,
  base: EntityBase = 'bundle',
): CedarRequest {
  const overlay = requestOverlay(set, req.entities, base);
  const store: EntityStore = base === 'envoy' ? set.envoyEntities : set.entities;
  const roots = [...store.keys(), ...(overlay?.keys() ?? [])];
  return {
    principal: req.principal,
    action: req.action,
    resource: req.resource,
    context: req.context,
    entities: entitiesToSend(store, overlay, roots),
  };
}

/** The request's entities by uid key (read against the schema for `bundle` requests); refuses one uid given twice. */
function requestOverlay(
  set: CompiledPolicySet,
  entities: EntityJson[] | undefined,
  base: EntityBase,
): Map<string, EntityJson> | undefined {
  if (!entities || entities.length === 0) return undefined;
  const out = new Map<string, EntityJson>();
  for (const raw of entities) {
    const e = base === 'bundle' && set.schemaEntities ? set.schemaEntities.normalizeEntity(raw) : raw;
    const k = entityKey(e);
    if (out.has(k)) {
      const { type, id } = uidOf(e.uid);
      throw new EngineRequestError(`entity ${type}::${JSON.stringify(id)} is given twice in the request`);
    }
    out.set(k, e);
  }
  return out;
}

function projectOverlay(overlay: ReadonlyMap<string, EntityJson>, reads: ReadSet): Map<string, EntityJson> {
  const out = new Map<string, EntityJson>();
  for (const [k, e] of overlay) {
    const p: EntityJson = {
      uid: e.uid,
      attrs: projectEntityAttrs(e.attrs ?? {}, reads.entityAttrs),
      parents: e.parents ?? [],
    };
    if (reads.tags && e.tags) p.tags = e.tags;
    out.set(k, p);
  }
  return out;
}

/**
 * Where Cedar can start reaching entity data for this slice: the scope
 * variables it reads data of, the entity literals of its policies, and uids in
 * the part of the context it reads. Empty: no entity data is observable.
 */
function entityRoots(req: EngineRequest, slice: SlicePart, ctxKey: unknown): { roots: string[]; viaContext: boolean } {
  const needs = slice.needs;
  const roots: string[] = [];
  if (needs.principal) roots.push(uidKey(req.principal.type, req.principal.id));
  if (needs.action) roots.push(uidKey(req.action.type, req.action.id));
  if (needs.resource) roots.push(uidKey(req.resource.type, req.resource.id));
  for (const k of slice.reads.literals) roots.push(k);
  const before = roots.length;
  if (ctxKey !== null && typeof ctxKey === 'object')
    collectEntityRefs(ctxKey as CedarValueJson, { add: (k: string) => roots.push(k) });
  return { roots, viaContext: roots.length > before };
}

function asEvaluated(req: EngineRequest): CedarRequest {
  return { principal: req.principal, action: req.action, resource: req.resource, context: req.context, entities: [] };
}

/** Every later hit shares the stored result (and decisions reference its arrays): make sharing safe. */
function freezeResult(r: EngineResult): EngineResult {
  Object.freeze(r.determining);
  Object.freeze(r.errors);
  return Object.freeze(r);
}
