/**
 * Read analysis: what the policies can observe, found once at load from their
 * JSON (EST) form. Projection (projection.ts) sends Cedar only that (a set
 * reading one header must not pay for 300: the request crosses the wasm
 * boundary as JSON, ~5–10 µs per header here) and the decision cache keys on
 * exactly that (context-key.ts).
 *
 * Cedar has no dynamic attribute access (except entity tags), so every read is
 * a static chain `context.a.b` / `x has a`. A chain used as a value observes the
 * whole value at its end; `has` observes only presence. Anything the analysis
 * cannot follow (the bare `context` variable, `.` on a computed entity) falls
 * back to reading more, never less: the reads are a superset of what can be
 * observed, which is what keeps projection and cache keys exact.
 */
import type { CedarValueJson, PolicyJson } from './cedar-wasm.js';
import { collectEntityRefs } from './entity-store.js';
import { compileLike, type LikePattern, type PatternElem } from './like-pattern.js';

/** A test of a context value against a literal: all a policy may do with some strings. */
export type ValueTest = { kind: 'like'; pattern: LikePattern; text: string } | { kind: 'eq'; value: string };

/** What is read below one context path. */
export interface ContextReads {
  /** The whole value here is observed (compared, passed to a function, ...). */
  whole: boolean;
  /** Only presence is observed (`has`); the value itself is never looked at. */
  present: boolean;
  /**
   * The value is tested with `like <pattern>` or `== "<literal>"` (and nothing
   * else, unless `whole`): Cedar needs the value, the cache key only the outcomes.
   */
  tests: ValueTest[];
  children: Map<string, ContextReads>;
}

export interface ReadSet {
  context: ContextReads;
  /**
   * Attribute names read on any entity; other attributes are left out of
   * requests. (A path below `context` is not counted: when the context holds
   * an entity uid, the engine sends entities with all their attributes.)
   */
  entityAttrs: Set<string>;
  /** Some policy calls hasTag/getTag, whose keys are computed: tags are sent whole. */
  tags: boolean;
  /** The principal's entity data (attributes, parents) is observable (`principal in`, `principal.x`). */
  principalEntity: boolean;
  resourceEntity: boolean;
  /** The action hierarchy is observable (`action in ...`). */
  actionEntities: boolean;
  /** An entity is reached in a way the analysis does not follow: send every reachable entity. */
  allEntities: boolean;
  /**
   * Entity literals written in conditions (`Flags::"global".lockdown`), as uid
   * keys: their data, and everything it reaches, is sent like the principal's.
   */
  literals: Set<string>;
}

/**
 * Context fields whose value changes from one request to the next even for the
 * same caller and call (time is per request; load is per second). A slice that
 * reads one is not cached: the key would include the value, so entries would
 * never be hit and only churn the cache. Fields that change in coarse steps
 * (an hour, a weekday, a mode) are fine to cache: their value is in the key.
 */
export const VOLATILE_CONTEXT_FIELDS: ReadonlySet<string> = new Set(['time', 'load']);

/** Reads that observe all of the context: for evaluations whose policies are not among the set's slices (`@shadow` ones). */
export function wholeContextReads(): ContextReads {
  return { whole: true, present: false, tests: [], children: new Map() };
}

export function emptyReads(): ContextReads {
  return { whole: false, present: false, tests: [], children: new Map() };
}

export function emptyReadSet(): ReadSet {
  return {
    context: emptyReads(),
    entityAttrs: new Set(),
    tags: false,
    principalEntity: false,
    resourceEntity: false,
    actionEntities: false,
    allEntities: false,
    literals: new Set(),
  };
}

type Expr = Record<string, unknown>;
type ScopeVar = 'principal' | 'action' | 'resource';

/** Add one policy's reads to `into`. */
export function addPolicyReads(into: ReadSet, policy: PolicyJson): void {
  const scope = (c: { op: string; in?: unknown }, v: ScopeVar): void => {
    if (c.op === 'in' || (c.op === 'is' && c.in !== undefined)) markEntity(into, v);
  };
  scope(policy.principal as { op: string }, 'principal');
  scope(policy.action as { op: string }, 'action');
  scope(policy.resource as { op: string }, 'resource');
  for (const clause of policy.conditions ?? []) visit(into, clause.body as unknown as Expr);
}

export function analysePolicies(policies: Iterable<{ json: PolicyJson }>): ReadSet {
  const reads = emptyReadSet();
  for (const p of policies) addPolicyReads(reads, p.json);
  return reads;
}

/** True when the set reads a field that makes its decisions uncacheable. */
export function readsVolatile(reads: ReadSet): boolean {
  if (reads.context.whole) return true;
  for (const k of reads.context.children.keys()) if (VOLATILE_CONTEXT_FIELDS.has(k)) return true;
  return false;
}

function markEntity(into: ReadSet, v: ScopeVar): void {
  if (v === 'principal') into.principalEntity = true;
  else if (v === 'resource') into.resourceEntity = true;
  else into.actionEntities = true;
}

/** `e` reads entity data of whatever it evaluates to. */
function entityDataOf(into: ReadSet, e: Expr): void {
  const v = e.Var;
  if (v === 'principal' || v === 'action' || v === 'resource') markEntity(into, v);
  else into.allEntities = true;
}

/** The attribute chain of `e` when it is `context.a.b...` (only `.` steps), else null. */
function contextPath(e: Expr): string[] | null {
  if (e.Var === 'context') return [];
  const dot = e['.'] as { left: Expr; attr: string } | undefined;
  if (!dot) return null;
  const base = contextPath(dot.left);
  return base ? [...base, dot.attr] : null;
}

function addTest(root: ContextReads, path: string[], test: ValueTest): void {
  const node = nodeAt(root, path);
  if (!node) return;
  const same = (t: ValueTest) =>
    t.kind === 'eq' ? test.kind === 'eq' && t.value === test.value : test.kind === 'like' && t.text === test.text;
  if (!node.tests.some(same)) node.tests.push(test);
}

/** The node for `path`, created as needed; undefined when an ancestor is read whole already. */
function nodeAt(root: ContextReads, path: string[]): ContextReads | undefined {
  let node = root;
  for (const step of path) {
    if (node.whole) return undefined;
    let child = node.children.get(step);
    if (!child) {
      child = emptyReads();
      node.children.set(step, child);
    }
    node = child;
  }
  return node;
}

function mark(root: ContextReads, path: string[], how: 'whole' | 'present'): void {
  let node = root;
  for (const step of path) {
    if (node.whole) return;
    let child = node.children.get(step);
    if (!child) {
      child = emptyReads();
      node.children.set(step, child);
    }
    node = child;
  }
  if (how === 'whole') {
    node.whole = true;
    node.children.clear();
  } else {
    node.present = true;
  }
}

function visit(into: ReadSet, e: unknown): void {
  if (e === null || typeof e !== 'object') return;
  if (Array.isArray(e)) {
    for (const x of e) visit(into, x);
    return;
  }
  const node = e as Expr;
  // Every EST expression is an object with exactly one key naming its kind.
  for (const kind in node) {
    const body = node[kind] as Expr;
    switch (kind) {
      case 'Value':
        // An entity literal (alone, or inside a set or record literal).
        collectEntityRefs(body as unknown as CedarValueJson, into.literals);
        break;
      case 'Slot':
      case 'Unknown':
        break;
      case 'Var':
        // The whole context used as a value (e.g. `context == {...}`): send it all.
        if (body === ('context' as unknown)) mark(into.context, [], 'whole');
        break;
      case '.': {
        const path = contextPath(node);
        if (path) {
          mark(into.context, path, 'whole');
          break;
        }
        into.entityAttrs.add(body.attr as string);
        entityOrRecord(into, body.left as Expr);
        break;
      }
      case 'has': {
        const attrs = Array.isArray(body.attr) ? (body.attr as string[]) : [body.attr as string];
        const base = contextPath(body.left as Expr);
        if (base) {
          // `context has a.b` tests a, then a.b: both are presence reads.
          for (let i = 1; i <= attrs.length; i++) mark(into.context, [...base, ...attrs.slice(0, i)], 'present');
          break;
        }
        for (const a of attrs) into.entityAttrs.add(a);
        entityOrRecord(into, body.left as Expr);
        break;
      }
      case 'in': {
        entityDataOf(into, body.left as Expr);
        visit(into, body.left);
        visit(into, body.right);
        break;
      }
      case 'getTag':
      case 'hasTag': {
        into.tags = true;
        entityDataOf(into, body.left as Expr);
        visit(into, body.left);
        visit(into, body.right);
        break;
      }
      case 'is': {
        if (body.in !== undefined) {
          entityDataOf(into, body.left as Expr);
          visit(into, body.in);
        }
        visit(into, body.left);
        break;
      }
      case 'like': {
        const path = contextPath(body.left as Expr);
        if (path && path.length > 0) {
          const elems = body.pattern as unknown as PatternElem[];
          addTest(into.context, path, { kind: 'like', pattern: compileLike(elems), text: JSON.stringify(elems) });
          break;
        }
        visit(into, body.left);
        break;
      }
      case '==':
      case '!=': {
        // A context string against a string literal: an equality test (see ValueTest).
        const l = body.left as Expr;
        const r = body.right as Expr;
        const literal = (e: Expr) =>
          e.Value !== undefined && typeof e.Value === 'string' ? (e.Value as string) : undefined;
        const lp = contextPath(l);
        const rp = contextPath(r);
        if (lp && lp.length > 0 && literal(r) !== undefined)
          addTest(into.context, lp, { kind: 'eq', value: literal(r)! });
        else if (rp && rp.length > 0 && literal(l) !== undefined)
          addTest(into.context, rp, { kind: 'eq', value: literal(l)! });
        else {
          visit(into, l);
          visit(into, r);
        }
        break;
      }
      case 'Record':
        for (const k in body) visit(into, body[k]);
        break;
      default:
        // Operators ({left, right} / {arg}), if-then-else, Set and extension calls (arrays).
        if (Array.isArray(body)) visit(into, body);
        else for (const k in body) visit(into, body[k]);
    }
  }
}

/**
 * `.`/`has` on something other than a context chain: an entity (or a record
 * literal). The scope variables are followed; anything else sends all entities.
 */
function entityOrRecord(into: ReadSet, left: Expr): void {
  entityDataOf(into, left);
  if (left.Var === undefined) visit(into, left);
}

/** Add `from` to `into` (a slice reads what any of its policies reads). */
export function mergeReadsInto(into: ReadSet, from: ReadSet): ReadSet {
  mergeContext(into.context, from.context);
  for (const n of from.entityAttrs) into.entityAttrs.add(n);
  into.tags ||= from.tags;
  into.principalEntity ||= from.principalEntity;
  into.resourceEntity ||= from.resourceEntity;
  into.actionEntities ||= from.actionEntities;
  into.allEntities ||= from.allEntities;
  for (const k of from.literals) into.literals.add(k);
  return into;
}

/** Union of read sets, as a new one. */
export function unionOfReads(sets: Iterable<ReadSet>): ReadSet {
  const out = emptyReadSet();
  for (const s of sets) mergeReadsInto(out, s);
  return out;
}

function mergeContext(into: ContextReads, from: ContextReads): void {
  if (into.whole) return;
  if (from.whole) {
    into.whole = true;
    into.children.clear();
    return;
  }
  into.present ||= from.present;
  for (const t of from.tests) {
    const same = (x: ValueTest) =>
      x.kind === 'eq' ? t.kind === 'eq' && x.value === t.value : t.kind === 'like' && x.text === t.text;
    if (!into.tests.some(same)) into.tests.push(t);
  }
  for (const [k, child] of from.children) {
    let mine = into.children.get(k);
    if (!mine) {
      mine = emptyReads();
      into.children.set(k, mine);
    }
    mergeContext(mine, child);
  }
}

/** A readable summary of a read set (CLI, logs, tests). */
export function describeReads(reads: ReadSet): { context: string[]; entityAttrs: string[]; entities: string[] } {
  const paths: string[] = [];
  const walk = (n: ContextReads, prefix: string): void => {
    if (n.whole) paths.push(prefix || 'context');
    else if (n.tests.length > 0) paths.push(`${prefix} (${n.tests.length} test${n.tests.length > 1 ? 's' : ''})`);
    else if (n.children.size === 0 && n.present) paths.push(`${prefix} (presence)`);
    for (const [k, c] of n.children) walk(c, prefix ? `${prefix}.${k}` : `context.${k}`);
  };
  walk(reads.context, '');
  const entities: string[] = [];
  if (reads.allEntities) entities.push('all');
  if (reads.principalEntity) entities.push('principal');
  if (reads.resourceEntity) entities.push('resource');
  if (reads.actionEntities) entities.push('action');
  return { context: paths.sort(), entityAttrs: [...reads.entityAttrs].sort(), entities };
}

/**
 * The context as the cache key sees it: like `projectContext`, except that a
 * string only tested against literals (`like`, `==`) is replaced by the
 * outcomes of those tests. Requests equal here get equal answers from the
 * slice these reads come from: every expression that looks at the string

/** Which of the request's own entities' data a slice can observe. */
export interface EntityNeeds {
  principal: boolean;
  resource: boolean;
  action: boolean;
}

/** What a slice's policies can observe: unknown reach means everything. */
export function entityNeedsOf(reads: ReadSet): EntityNeeds {
  const all = reads.allEntities;
  return {
    principal: all || reads.principalEntity,
    resource: all || reads.resourceEntity,
    action: all || reads.actionEntities,
  };
}
