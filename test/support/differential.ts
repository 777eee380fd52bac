/**
 * Differential testing of the engine against plain Cedar (CONVENTIONS.md,
 * "Shortcuts are proven against the reference"), in the manner of cedar-spec's
 * DRT targets: random policy sets, entity graphs, optional schemas and
 * requests; every request decided by our engine uncached, cached twice, and in
 * a shuffled stream sharing one cache, and by plain Cedar on the whole input
 * (test/support/plain-cedar.ts). Decisions, determining policies and erroring
 * policies must agree.
 *
 * A scenario is one compiled set and its requests; a case is one request.
 * Used by test/property/differential.property.test.ts (fixed seed) and
 * test/fuzz/differential-fuzz.ts (`npm run fuzz`).
 */
import fc from 'fast-check';
import { builtinActionEntities } from '../../src/cedar/action-hierarchy.js';
import type { CedarValueJson, EntityJson } from '../../src/cedar/cedar-wasm.js';
import { EngineResultCache } from '../../src/cache/decision-cache.js';
import {
  compilePolicySet,
  parsePolicies,
  PolicySetError,
  schemaViolations,
  type CompiledPolicySet,
} from '../../src/cedar/compile.js';
import {
  decide,
  decideWithShadowPolicies,
  type CacheOutcome,
  type EngineRequest,
  type EntityBase,
} from '../../src/cedar/engine.js';
import type { EngineResult } from '../../src/cedar/evaluate.js';
import type { EngineName } from '../../src/cedar/js/engine-choice.js';
import { atom, STRINGS } from './differential-exprs.js';
import {
  validDatetimeText,
  validDecimalText,
  validDurationText,
  validExtnJson,
  validIpText,
} from './extension-literals.js';
import {
  allPolicyTextsOf,
  enforcedPolicyTexts,
  mergeEntityLists,
  PlainCedar,
  type PlainAnswer,
} from './plain-cedar.js';

// ---------------------------------------------------------------- the world

const USERS = ['u0', 'u1', 'u2'];
const GROUPS = ['g0', 'g1', 'g2', 'g3'];
const DOCS = ['d0', 'd1', 'd2'];
const FOLDERS = ['f0', 'f1', 'f2'];

const ent = (type: string, id: string) => ({ __entity: { type, id } });
const userRef = fc.constantFrom(...USERS, 'u9').map((id) => ent('User', id));
const docRef = fc.constantFrom(...DOCS).map((id) => ent('Doc', id));

/** Longs a JSON number carries exactly (i64 bounds themselves are written in policy text). */
const jsonLong = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -3, max: 5 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 3_037_000_500, -4_294_967_296),
  },
);

/** A scalar Cedar value as JSON: bool, Long, string (unicode, escapes), entity ref, extension value. */
const scalar: fc.Arbitrary<CedarValueJson> = fc.oneof(
  fc.boolean(),
  jsonLong,
  fc.constantFrom(...STRINGS),
  userRef,
  docRef,
  validExtnJson(),
) as fc.Arbitrary<CedarValueJson>;

/** Cedar values as JSON, explicit form (no schema needed to read them): scalars, sets (empty, mixed, of extension values), nested records. */
const value: fc.Arbitrary<CedarValueJson> = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.array(fc.constantFrom('t', 'u', 'admin', 'é'), { maxLength: 2 }) },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 3 }) },
  {
    weight: 1,
    arbitrary: fc.record(
      { x: fc.integer({ min: 0, max: 3 }), s: fc.constantFrom(...STRINGS), y: scalar },
      { requiredKeys: [] },
    ),
  },
) as fc.Arbitrary<CedarValueJson>;

const attrs = (names: string[]) =>
  fc.dictionary(fc.constantFrom(...names), value, { maxKeys: 4 }) as fc.Arbitrary<Record<string, CedarValueJson>>;
const tags = fc.option(
  fc.dictionary(fc.constantFrom('k0', 'k1', 'k2'), value, { maxKeys: 2 }) as fc.Arbitrary<
    Record<string, CedarValueJson>
  >,
  { nil: undefined },
);
const ATTR_NAMES = ['level', 'name', 'owner', 'rec', 'ip', 'd', 'lockdown', 'flag', 'when', 'roles', 'tags', 'é'];

const parentsFrom = (type: string, pool: string[]) => fc.subarray(pool).map((ids) => ids.map((id) => ({ type, id })));

function entity(
  type: string,
  id: string,
  parents: fc.Arbitrary<{ type: string; id: string }[]>,
): fc.Arbitrary<EntityJson | null> {
  return fc.option(fc.record({ attrs: attrs(ATTR_NAMES), parents, tags }), { freq: 4, nil: null }).map((r) =>
    r === null
      ? null
      : ({
          uid: { type, id },
          attrs: r.attrs,
          parents: r.parents,
          ...(r.tags ? { tags: r.tags } : {}),
        } as EntityJson),
  );
}

/** Entity graphs: groups in groups (several levels), folders in folders, an action hierarchy, a namespace. */
const worldEntities: fc.Arbitrary<EntityJson[]> = fc
  .tuple(
    ...GROUPS.map((g, i) => entity('Group', g, parentsFrom('Group', GROUPS.slice(i + 1)))),
    ...USERS.map((u) => entity('User', u, parentsFrom('Group', GROUPS))),
    ...FOLDERS.map((f, i) => entity('Folder', f, parentsFrom('Folder', FOLDERS.slice(i + 1)))),
    ...DOCS.map((d) => entity('Doc', d, parentsFrom('Folder', FOLDERS))),
    entity('Flags', 'global', fc.constant([])),
    entity('Shop::Item', 'i0', fc.constant([])),
    fc.subarray([
      { uid: { type: 'Action', id: 'view' }, attrs: {}, parents: [{ type: 'Action', id: 'read' }] },
      { uid: { type: 'Action', id: 'read' }, attrs: {}, parents: [{ type: 'Action', id: 'any' }] },
      { uid: { type: 'Action', id: 'edit' }, attrs: { level: 2 }, parents: [{ type: 'Action', id: 'write' }] },
      { uid: { type: 'Action', id: 'write' }, attrs: {}, parents: [{ type: 'Action', id: 'any' }] },
      { uid: { type: 'Action', id: 'GET' }, attrs: {}, parents: [{ type: 'Action', id: 'safe' }] },
      { uid: { type: 'Action', id: 'safe' }, attrs: {}, parents: [{ type: 'Action', id: 'any' }] },
      { uid: { type: 'Shop::Action', id: 'buy' }, attrs: {}, parents: [{ type: 'Shop::Action', id: 'browse' }] },
    ] as EntityJson[]),
  )
  .map((parts) => {
    const actions = parts.pop() as unknown as EntityJson[];
    return [...(parts as (EntityJson | null)[]).filter((e): e is EntityJson => e !== null), ...actions];
  });

// ---------------------------------------------------------------- policies

const principalScope = fc.constantFrom(
  'principal',
  'principal == User::"u0"',
  'principal in Group::"g1"',
  'principal in Group::"g3"',
  'principal is User',
  'principal is User in Group::"g2"',
  'principal in User::"u1"',
);
const actionScope = fc.constantFrom(
  'action',
  'action == Action::"view"',
  'action == Action::"edit"',
  'action in Action::"read"',
  'action in Action::"any"',
  'action in [Action::"view", Action::"write"]',
  'action == Shop::Action::"buy"',
  'action in Shop::Action::"browse"',
  'action in Action::"safe"',
);
const resourceScope = fc.constantFrom(
  'resource',
  'resource == Doc::"d0"',
  'resource in Folder::"f1"',
  'resource in Folder::"f2"',
  'resource is Doc',
  'resource is Doc in Folder::"f2"',
  'resource is Public',
  'resource == Shop::Item::"i0"',
  'resource is Shop::Item',
);

// Conditions: `atom` (test/support/differential-exprs.ts) covers every construct, joined here by && || ! and if.

const boolExpr: fc.Arbitrary<string> = fc.letrec<{ e: string }>((tie) => ({
  e: fc.oneof(
    // Shallow: Cedar's parser slows down sharply on deeply nested expressions, and depth 2 already mixes every form.
    { maxDepth: 2, depthSize: 'xsmall', withCrossShrink: true },
    atom,
    tie('e').map((a) => `!(${a})`),
    fc.tuple(tie('e'), tie('e')).map(([a, b]) => `(${a}) && (${b})`),
    fc.tuple(tie('e'), tie('e')).map(([a, b]) => `(${a}) || (${b})`),
    fc.tuple(tie('e'), tie('e'), tie('e')).map(([a, b, c]) => `if ${a} then ${b} else ${c}`),
  ),
})).e;

export const policyText = fc
  .record({
    effect: fc.constantFrom('permit', 'permit', 'forbid'),
    principal: principalScope,
    action: actionScope,
    resource: resourceScope,
    conditions: fc.array(fc.record({ kind: fc.constantFrom('when', 'unless'), body: boolExpr }), { maxLength: 2 }),
    id: fc.boolean(),
  })
  .map((p) => {
    const body = p.conditions.map((c) => ` ${c.kind} { ${c.body} }`).join('');
    return `${p.effect} (${p.principal}, ${p.action}, ${p.resource})${body};`;
  });

/** Some policies are `@shadow` (about one in seven): evaluated beside the set, never enforced. */
const annotatedPolicy = fc.record({ text: policyText, shadow: fc.nat(6).map((n) => n === 0) });

const policyFiles = fc
  .array(fc.array(annotatedPolicy, { minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 3 })
  .map((files) =>
    files.map((ps, i) => ({
      name: `f${i}.cedar`,
      text: ps
        .map(({ text, shadow }, n) => `${n % 3 === 1 ? `@id("p${i}-${n}") ` : ''}${shadow ? '@shadow ' : ''}${text}`)
        .join('\n'),
    })),
  );

// ---------------------------------------------------------------- schemas

/** A schema over the same world; with it, entities.json may use the implicit forms Cedar reads against it. */
export const SCHEMA = `
namespace Shop {
  entity Item { level?: Long };
  action browse;
  action buy in [browse] appliesTo { principal: [User], resource: [Item], context: Ctx };
}
type Ctx = {
  a?: Long, big?: Long, s?: String, u?: String, "k y"?: String, flag?: Bool, ip?: ipaddr, ips?: Set<ipaddr>, d?: decimal,
  dur?: duration, when?: datetime, rec?: { x: Long, s?: String }, n?: { when: datetime, ip: ipaddr }, e?: User,
  tags?: Set<String>, nums?: Set<Long>, empty?: Set<Long>, load?: Long, time?: datetime
};
entity Group in [Group];
entity User in [Group] { level?: Long, name?: String, owner?: User, roles?: Set<String> } tags Bool;
entity Folder in [Folder];
entity Doc in [Folder] { owner?: User, level?: Long, ip?: ipaddr, d?: decimal, rec?: { x: Long }, when?: datetime, name?: String } tags Long;
entity Flags { lockdown?: Bool };
entity Public;
action any;
action read, write in [any];
action safe in [any];
action view in [read] appliesTo { principal: [User], resource: [Doc, Folder, Public], context: Ctx };
action edit in [write] appliesTo { principal: [User], resource: [Doc, Folder, Public], context: Ctx };
action "GET" in [safe] appliesTo { principal: [User], resource: [Doc, Folder, Public], context: Ctx };
`;

/** A ref written explicitly or, under a schema, as the implicit `{type, id}`. */
const refAs = (type: string, id: string, implicit: boolean) => (implicit ? { type, id } : ent(type, id));
const ipAs = (ip: string, implicit: boolean) => (implicit ? ip : { __extn: { fn: 'ip', arg: ip } });

const schemaEntities: fc.Arbitrary<EntityJson[]> = fc
  .record({
    groups: fc.tuple(...GROUPS.map((_, i) => parentsFrom('Group', GROUPS.slice(i + 1)))),
    users: fc.tuple(
      ...USERS.map(() =>
        fc.record({
          parents: parentsFrom('Group', GROUPS),
          level: fc.option(fc.integer({ min: -2, max: 4 }), { nil: undefined }),
          name: fc.option(fc.constantFrom(...STRINGS), { nil: undefined }),
          owner: fc.option(fc.tuple(fc.constantFrom(...USERS), fc.boolean()), { nil: undefined }),
          roles: fc.option(fc.array(fc.constantFrom('admin', 'dev', 'é'), { maxLength: 2 }), { nil: undefined }),
          tags: fc.dictionary(fc.constantFrom('k0', 'k1', 'é'), fc.boolean(), { maxKeys: 2 }),
        }),
      ),
    ),
    folders: fc.tuple(...FOLDERS.map((_, i) => parentsFrom('Folder', FOLDERS.slice(i + 1)))),
    docs: fc.tuple(
      ...DOCS.map(() =>
        fc.record({
          parents: parentsFrom('Folder', FOLDERS),
          owner: fc.option(fc.tuple(fc.constantFrom(...USERS), fc.boolean()), { nil: undefined }),
          ip: fc.option(
            fc.tuple(fc.oneof(fc.constantFrom('10.0.0.1', '127.0.0.1', '::1'), validIpText()), fc.boolean()),
            { nil: undefined },
          ),
          d: fc.option(
            fc.oneof(
              fc.constantFrom('1.5', '3.0', '922337203685477.5807', '-922337203685477.5808'),
              validDecimalText(),
            ),
            { nil: undefined },
          ),
          rec: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
          when: fc.option(validDatetimeText(), { nil: undefined }),
          name: fc.option(fc.constantFrom(...STRINGS), { nil: undefined }),
          tags: fc.dictionary(fc.constantFrom('k1', 'k2'), fc.integer({ min: -1, max: 2 }), { maxKeys: 2 }),
        }),
      ),
    ),
    lockdown: fc.option(fc.boolean(), { nil: undefined }),
  })
  .map((w) => {
    const out: EntityJson[] = [];
    const defined = <T extends Record<string, unknown>>(o: T) =>
      Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Record<string, CedarValueJson>;
    GROUPS.forEach((g, i) => {
      out.push({ uid: { type: 'Group', id: g }, attrs: {}, parents: w.groups[i] });
    });
    USERS.forEach((u, i) => {
      const x = w.users[i];
      const attrs = defined({
        level: x.level,
        name: x.name,
        owner: x.owner ? refAs('User', x.owner[0], x.owner[1]) : undefined,
        roles: x.roles,
      });
      out.push({ uid: { type: 'User', id: u }, attrs, parents: x.parents, tags: x.tags } as EntityJson);
    });
    FOLDERS.forEach((f, i) => {
      out.push({ uid: { type: 'Folder', id: f }, attrs: {}, parents: w.folders[i] });
    });
    DOCS.forEach((d, i) => {
      const x = w.docs[i];
      const attrs = defined({
        owner: x.owner ? refAs('User', x.owner[0], x.owner[1]) : undefined,
        ip: x.ip ? ipAs(x.ip[0], x.ip[1]) : undefined,
        d: x.d === undefined ? undefined : { __extn: { fn: 'decimal', arg: x.d } },
        rec: x.rec === undefined ? undefined : { x: x.rec },
        when: x.when === undefined ? undefined : { __extn: { fn: 'datetime', arg: x.when } },
        name: x.name,
      });
      out.push({ uid: { type: 'Doc', id: d }, attrs, parents: x.parents, tags: x.tags } as EntityJson);
    });
    out.push({
      uid: { type: 'Flags', id: 'global' },
      attrs: w.lockdown === undefined ? {} : { lockdown: w.lockdown },
      parents: [],
    });
    return out;
  });

// ---------------------------------------------------------------- requests

/** Datetimes near the edges that matter: leap days, offsets across midnight and year ends, the epoch. */
const datetimeValue = fc.oneof(
  fc.constantFrom(
    '2025-06-01T00:00:00Z',
    '2026-06-01T00:00:00Z',
    '2024-02-29T23:30:00-0100',
    '2024-03-01T00:30:00+0100',
    '2023-12-31T23:59:59.999-2359',
    '2000-02-29',
    '1969-12-31T23:59:59.999Z',
    '0000-01-01T00:00:00+2359',
    '9999-12-31T23:59:59.999-2359',
  ),
  validDatetimeText(),
);

const context = (schema: boolean) =>
  fc
    .record(
      {
        a: fc.integer({ min: -1, max: 3 }),
        big: jsonLong,
        s: fc.constantFrom(...STRINGS),
        u: fc.constantFrom(...STRINGS),
        ky: fc.constantFrom(...STRINGS),
        flag: fc.boolean(),
        ip: fc.tuple(
          fc.oneof(
            fc.constantFrom('10.1.2.3', '192.168.0.1', '::1', '2001:db8::1', 'ff02::1', '10.0.0.0/8'),
            validIpText(),
          ),
          fc.boolean(),
        ),
        ips: fc.array(fc.oneof(fc.constantFrom('10.1.2.3', '10.1.2.3/32', '::1'), validIpText()), { maxLength: 3 }),
        d: fc.oneof(
          fc.constantFrom('1.5', '922337203685477.5807', '-922337203685477.5808', '-0.0001'),
          validDecimalText(),
        ),
        dur: fc.oneof(
          fc.constantFrom('1h', '-1d2h', '0ms', '9223372036854775807ms', '-9223372036854775808ms'),
          validDurationText(),
        ),
        when: datetimeValue,
        rec: fc.record({ x: fc.integer({ min: 0, max: 2 }), s: fc.constantFrom(...STRINGS) }, { requiredKeys: ['x'] }),
        n: fc.record({ when: datetimeValue, ip: fc.oneof(fc.constantFrom('10.1.2.3', '::1'), validIpText()) }),
        e: fc.tuple(fc.constantFrom(...USERS, 'u7'), fc.boolean()),
        tags: fc.array(fc.constantFrom('t', 'u'), { maxLength: 2 }),
        nums: fc.array(jsonLong, { maxLength: 3 }),
        empty: fc.constant([] as number[]),
        // Volatile fields (reads.ts VOLATILE_CONTEXT_FIELDS): a slice with these and stable policies is decided in two parts.
        load: fc.integer({ min: 0, max: 3 }),
        time: datetimeValue,
      },
      { requiredKeys: [] },
    )
    // A handful of fields per request: Cedar reads the whole context on every call, and the policies read a few.
    .chain((c) =>
      fc
        .subarray(Object.keys(c), { maxLength: 6 })
        .map((keep) => Object.fromEntries(keep.map((k) => [k, c[k as keyof typeof c]])) as typeof c),
    )
    .map((c) => {
      const out: Record<string, CedarValueJson> = {};
      const extn = (fn: string, arg: string) => ({ __extn: { fn, arg } }) as CedarValueJson;
      if (c.a !== undefined) out.a = c.a;
      if (c.big !== undefined) out.big = c.big;
      if (c.s !== undefined) out.s = c.s;
      if (c.u !== undefined) out.u = c.u;
      if (c.ky !== undefined) out['k y'] = c.ky;
      if (c.flag !== undefined) out.flag = c.flag;
      if (c.ip) out.ip = ipAs(c.ip[0], schema && c.ip[1]) as CedarValueJson;
      if (c.ips) out.ips = c.ips.map((i) => extn('ip', i));
      if (c.d !== undefined) out.d = extn('decimal', c.d);
      if (c.dur !== undefined) out.dur = extn('duration', c.dur);
      if (c.when) out.when = extn('datetime', c.when);
      if (c.rec) out.rec = c.rec;
      if (c.n) out.n = { when: extn('datetime', c.n.when), ip: extn('ip', c.n.ip) };
      if (c.e) out.e = refAs('User', c.e[0], schema && c.e[1]) as CedarValueJson;
      if (c.tags) out.tags = c.tags;
      if (c.nums) out.nums = c.nums;
      if (c.empty) out.empty = c.empty;
      if (c.load !== undefined) out.load = c.load;
      if (c.time) out.time = extn('datetime', c.time);
      return out;
    });

/** Entities a request brings: the principal with more data, a group with new parents, an entity only the context names. */
const requestEntities = (schema: boolean): fc.Arbitrary<EntityJson[]> =>
  fc.subarray([0, 1, 2]).chain((which) =>
    fc.tuple(
      ...which.map((w) => {
        if (w === 0) {
          return fc
            .record({ level: fc.integer({ min: 0, max: 3 }), parents: parentsFrom('Group', GROUPS), tag: fc.boolean() })
            .map(
              (x) =>
                ({
                  uid: { type: 'User', id: '@principal' },
                  attrs: { level: x.level },
                  parents: x.parents,
                  tags: { k0: x.tag },
                }) as EntityJson,
            );
        }
        if (w === 1)
          return parentsFrom('Group', ['g3']).map(
            (parents) => ({ uid: { type: 'Group', id: 'g0' }, attrs: {}, parents }) as EntityJson,
          );
        return fc.integer({ min: 0, max: 3 }).map(
          (level) =>
            ({
              uid: { type: 'User', id: 'u7' },
              attrs: schema ? { level } : { level, name: 'a' },
              parents: [{ type: 'Group', id: 'g1' }],
            }) as EntityJson,
        );
      }),
    ),
  );

export interface RequestCase extends EngineRequest {
  entities: EntityJson[];
}

const request = (schema: boolean): fc.Arbitrary<RequestCase> =>
  fc
    .record({
      principal: fc.constantFrom(...USERS, 'u9'),
      action: fc.constantFrom(
        ...(schema
          ? [
              { type: 'Action', id: 'view' },
              { type: 'Action', id: 'edit' },
              { type: 'Action', id: 'GET' },
              { type: 'Shop::Action', id: 'buy' },
            ]
          : [
              { type: 'Action', id: 'view' },
              { type: 'Action', id: 'edit' },
              { type: 'Action', id: 'GET' },
              { type: 'Action', id: 'POST' },
              { type: 'Shop::Action', id: 'buy' },
            ]),
      ),
      resource: fc.constantFrom(
        { type: 'Doc', id: 'd0' },
        { type: 'Doc', id: 'd1' },
        { type: 'Doc', id: 'd2' },
        { type: 'Folder', id: 'f1' },
        { type: 'Public', id: 'x' },
        { type: 'Secret', id: 'x' },
        { type: 'Shop::Item', id: 'i0' },
      ),
      context: context(schema),
      entities: requestEntities(schema),
    })
    .map((r) => ({
      principal: { type: 'User', id: r.principal },
      action: r.action,
      resource: r.resource,
      context: r.context,
      entities: r.entities.map((e) =>
        uidId(e) === '@principal' ? { ...e, uid: { type: 'User', id: r.principal } } : e,
      ),
    }));

function uidId(e: EntityJson): string {
  return ('__entity' in e.uid ? e.uid.__entity : e.uid).id;
}

// ---------------------------------------------------------------- scenarios

export interface Scenario {
  files: { name: string; text: string }[];
  entities: EntityJson[];
  schema?: string;
  /** Envoy checks see the server's action groups too. */
  base: EntityBase;
  requests: RequestCase[];
  /** Order of the shared-cache stream (a permutation of request indexes). */
  shuffle: number[];
}

export function scenario(requestsPerScenario: number): fc.Arbitrary<Scenario> {
  const withRequests = (schema: boolean) =>
    fc.array(request(schema), { minLength: requestsPerScenario, maxLength: requestsPerScenario }).chain((requests) =>
      fc
        .shuffledSubarray(
          requests.map((_, i) => i),
          { minLength: requests.length, maxLength: requests.length },
        )
        .map((shuffle) => ({ requests, shuffle })),
    );
  const plain = fc.record({
    files: policyFiles,
    entities: worldEntities,
    base: fc.constantFrom<EntityBase>('bundle', 'envoy'),
    rq: withRequests(false),
  });
  const typed = fc.record({ files: policyFiles, entities: schemaEntities, rq: withRequests(true) });
  return fc.oneof(
    {
      weight: 3,
      arbitrary: plain.map((s) => ({
        files: s.files,
        entities: s.entities,
        base: s.base,
        requests: s.rq.requests,
        shuffle: s.rq.shuffle,
      })),
    },
    {
      weight: 1,
      arbitrary: typed.map((s) => ({
        files: s.files,
        entities: s.entities,
        schema: SCHEMA,
        base: 'bundle' as EntityBase,
        requests: s.rq.requests,
        shuffle: s.rq.shuffle,
      })),
    },
  );
}

// ---------------------------------------------------------------- running one

export interface Disagreement {
  engine: EngineName;
  request: RequestCase;
  how: string;
  ours: unknown;
  plain: PlainAnswer;
}

interface Comparable {
  decision: 'allow' | 'deny';
  determining: string[];
  erroring: string[];
  failed: boolean;
  cache?: CacheOutcome;
}

function ours(
  set: CompiledPolicySet,
  req: RequestCase,
  base: EntityBase,
  cache?: EngineResultCache<EngineResult>,
): Comparable {
  try {
    const { result, cache: outcome } = decide(set, req, { base, cache });
    return {
      decision: result.decision,
      determining: [...result.determining],
      erroring: [...new Set(result.errors.map((e) => e.policyId))].sort(),
      failed: false,
      cache: outcome,
    };
  } catch {
    return { decision: 'deny', determining: [], erroring: [], failed: true };
  }
}

/** The set's answer with its `@shadow` policies included (what shadow evaluation reports). */
function oursWithShadow(set: CompiledPolicySet, req: RequestCase, base: EntityBase): Comparable {
  try {
    const result = decideWithShadowPolicies(set, req, { base });
    return {
      decision: result.decision,
      determining: [...result.determining],
      erroring: [...new Set(result.errors.map((e) => e.policyId))].sort(),
      failed: false,
    };
  } catch {
    return { decision: 'deny', determining: [], erroring: [], failed: true };
  }
}

function same(a: Comparable, p: PlainAnswer): boolean {
  if (p.failure !== undefined || a.failed) return a.failed && p.failure !== undefined;
  return (
    a.decision === p.decision &&
    a.determining.join('\n') === p.determining.join('\n') &&
    a.erroring.join('\n') === p.erroring.join('\n')
  );
}

/** Compile with the policies the schema refuses left out (random conditions often do not type-check). */
export function compileScenario(s: Scenario, engine: EngineName = 'js'): CompiledPolicySet | undefined {
  let files = s.files;
  try {
    if (s.schema !== undefined) {
      const parsed = [...parsePolicies({ version: 'probe', policies: files }).values()];
      const bad = new Set(schemaViolations(s.schema, parsed).map((v) => v.policyId));
      // Kept policies keep their ids (`<file>#<n>` would renumber once others are left out).
      files = files.map((f) => {
        const kept = parsed
          .filter((p) => p.file === f.name && !bad.has(p.id))
          .map((p) => (p.annotations.id ? p.text : `@id(${JSON.stringify(p.id)}) ${p.text}`));
        return {
          name: f.name,
          text: kept.length > 0 ? kept.join('\n') : 'forbid (principal, action, resource) when { false };',
        };
      });
    }
    return compilePolicySet({ version: 'gen', policies: files, entities: s.entities, schema: s.schema }, { engine });
  } catch (err) {
    if (err instanceof PolicySetError) return undefined;
    throw err;
  }
}

/** The reference's preparsed set is re-used under one id per process (re-preparsing an id replaces it). */
const REFERENCE_SLOT = 'differential-reference';

/** The reference for the enforced plus the `@shadow` policies, in a slot of its own. */
const SHADOW_REFERENCE_SLOT = 'differential-reference-shadow';

/**
 * How often a repeated request hit the cached stable part of a split slice (stable and volatile policies),
 * and how many requests were also decided with `@shadow` policies: proof the paths ran.
 */
export const differentialStats = { splitSliceHits: 0, shadowCases: 0 };

/** Both engines by default: the JS evaluator, and wasm (which the JS engine falls back to). */
export const ENGINES_UNDER_TEST: readonly EngineName[] = ['js', 'wasm'];

/**
 * Engines for the n-th scenario of a run: the JS engine (the default) every
 * time, wasm too on every WASM_EVERY-th (it has been held to plain Cedar for a
 * million cases; compiling and deciding everything twice would double the run).
 */
export const WASM_EVERY = 4;
export function enginesFor(n: number): readonly EngineName[] {
  return n % WASM_EVERY === 0 ? ENGINES_UNDER_TEST : ['js'];
}

/** Decide every request of a scenario every way, with each engine; the disagreements (empty when exact). */
export function runScenario(s: Scenario, engines: readonly EngineName[] = ENGINES_UNDER_TEST): Disagreement[] {
  const out: Disagreement[] = [];
  let expected: PlainAnswer[] | undefined;
  let withShadow: PlainAnswer[] | undefined;
  for (const engine of engines) {
    const set = compileScenario(s, engine);
    if (!set) return [];
    expected ??= referenceAnswers(s, enforcedPolicyTexts(set), REFERENCE_SLOT);
    if (set.hasShadowPolicies) withShadow ??= referenceAnswers(s, allPolicyTextsOf(set), SHADOW_REFERENCE_SLOT);
    out.push(...runWith(s, set, engine, expected, withShadow));
  }
  return out;
}

function referenceAnswers(s: Scenario, policies: Record<string, string>, slot: string): PlainAnswer[] {
  const plain = new PlainCedar(policies, s.schema, slot);
  const bundleEntities = s.base === 'envoy' ? mergeEntityLists(s.entities, builtinActionEntities()) : s.entities;
  return s.requests.map((r) => plain.decide({ ...r, entities: mergeEntityLists(bundleEntities, r.entities) }));
}

function runWith(
  s: Scenario,
  set: CompiledPolicySet,
  engine: EngineName,
  expected: PlainAnswer[],
  withShadow: PlainAnswer[] | undefined,
): Disagreement[] {
  const out: Disagreement[] = [];
  try {
    const check = (i: number, how: string, got: Comparable, plain = expected[i]) => {
      if (!same(got, plain)) out.push({ engine, request: s.requests[i], how, ours: got, plain });
    };
    if (withShadow) {
      s.requests.forEach((r, i) => {
        check(i, 'with @shadow policies', oursWithShadow(set, r, s.base), withShadow[i]);
        differentialStats.shadowCases++;
      });
    }
    s.requests.forEach((r, i) => {
      check(i, 'uncached', ours(set, r, s.base));
      const cache = new EngineResultCache<EngineResult>(64, 60_000);
      check(i, 'cached (first)', ours(set, r, s.base, cache));
      const repeat = ours(set, r, s.base, cache);
      check(i, 'cached (repeat)', repeat);
      if (repeat.cache === 'hit' && !repeat.failed && set.slices.sliceFor(r.action, r.resource).split)
        differentialStats.splitSliceHits++;
    });
    const shared = new EngineResultCache<EngineResult>(1000, 60_000);
    for (const i of s.shuffle) check(i, 'shared cache, shuffled stream', ours(set, s.requests[i], s.base, shared));
  } finally {
    set.retire();
  }
  return out;
}

export function describeScenario(s: Scenario, d: Disagreement[]): string {
  return JSON.stringify(
    {
      files: s.files,
      entities: s.entities,
      schema: s.schema !== undefined,
      base: s.base,
      disagreements: d.slice(0, 3),
    },
    null,
    1,
  );
}
