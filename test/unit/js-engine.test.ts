/**
 * The JS engine (src/cedar/js) on named edge cases, each held to plain Cedar
 * (`isAuthorized` on the same policies, entities and request): decision,
 * determining policies and erroring policies, and the JS engine must decide it
 * itself (no fallback to wasm). Bugs the differential suite finds become rows here.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { CedarValueJson, EntityJson } from '../../src/cedar/cedar-wasm.js';
import { compilePolicySet } from '../../src/cedar/compile.js';
import { decide } from '../../src/cedar/engine.js';
import { fallbackCounts, resetFallbacks } from '../../src/cedar/js/fallback.js';
import { ConfigError, loadConfig } from '../../src/config/load-config.js';
import { enforcedPolicyTexts, plainIsAuthorized } from '../support/plain-cedar.js';

interface Row {
  name: string;
  policies: string;
  entities?: EntityJson[];
  context?: Record<string, CedarValueJson>;
  requestEntities?: EntityJson[];
  principal?: { type: string; id: string };
  /** The JS engine may leave this one to wasm (and must say so). */
  fallsBack?: boolean;
}

const U0: EntityJson = {
  uid: { type: 'User', id: 'u0' },
  attrs: { level: 2, name: 'ab', rec: { x: 1, y: [1, 2] }, big: 9007199254740991 },
  parents: [{ type: 'Group', id: 'g0' }],
  tags: { k0: true },
};
const G0: EntityJson = { uid: { type: 'Group', id: 'g0' }, attrs: {}, parents: [{ type: 'Group', id: 'g1' }] };
const G1: EntityJson = { uid: { type: 'Group', id: 'g1' }, attrs: {}, parents: [] };
const WORLD = [U0, G0, G1];

const ROWS: Row[] = [
  { name: 'permit all', policies: 'permit(principal, action, resource);' },
  {
    name: 'forbid beats permit; both determining lists',
    policies:
      'permit(principal, action, resource); forbid(principal, action, resource); forbid(principal, action, resource);',
  },
  { name: 'scope in over two levels', policies: 'permit(principal in Group::"g1", action, resource);' },
  {
    name: 'scope is … in',
    policies:
      'permit(principal is User in Group::"g1", action, resource); forbid(principal is Group in Group::"g1", action, resource);',
  },
  { name: 'action in a list', policies: 'permit(principal, action in [Action::"x", Action::"view"], resource);' },
  {
    name: 'missing attribute errors, the other policy still allows',
    policies: 'forbid(principal, action, resource) when { principal.nope }; permit(principal, action, resource);',
  },
  {
    name: 'entity not in the store errors on attribute access',
    policies:
      'forbid(principal, action, resource) when { User::"ghost".level > 0 }; permit(principal, action, resource);',
  },
  {
    name: 'has on an entity not in the store is false',
    policies: 'permit(principal, action, resource) when { !(User::"ghost" has level) };',
  },
  {
    name: 'has path a.b',
    policies: 'permit(principal, action, resource) when { principal has rec.x && !(principal has rec.z) };',
  },
  {
    name: 'has path through a non-record errors',
    policies: 'permit(principal, action, resource) when { principal has level.x };',
  },
  {
    name: 'i64 max literal',
    policies:
      'permit(principal, action, resource) when { 9223372036854775807 > 9223372036854775806 && 9223372036854775807 - 1 == 9223372036854775806 };',
  },
  {
    name: 'i64 min literal',
    policies:
      'permit(principal, action, resource) when { -9223372036854775808 < 0 && -9223372036854775808 + 1 == -9223372036854775807 };',
  },
  {
    name: 'addition overflow is an error',
    policies:
      'permit(principal, action, resource) when { 9223372036854775807 + 1 > 0 }; permit(principal, action, resource) when { true };',
  },
  {
    name: 'multiplication overflow is an error',
    policies: 'permit(principal, action, resource) when { principal.level * 9223372036854775807 > 0 };',
  },
  {
    name: 'multiplication past 2^53 stays exact',
    policies:
      'permit(principal, action, resource) when { principal.big * 3 == 27021597764222973 && principal.big + principal.big == 18014398509481982 };',
  },
  {
    name: 'negation of i64 min overflows',
    policies: 'permit(principal, action, resource) when { -(-9223372036854775808) > 0 };',
  },
  {
    name: 'subtraction underflow',
    policies: 'permit(principal, action, resource) when { -9223372036854775808 - 1 < 0 };',
  },
  {
    name: '&& short-circuits an error on the right',
    policies: 'permit(principal, action, resource) when { false && principal.nope };',
  },
  {
    name: '|| short-circuits an error on the right',
    policies: 'permit(principal, action, resource) when { true || principal.nope };',
  },
  {
    name: '&& with a non-boolean is a type error',
    policies: 'permit(principal, action, resource) when { true && 1 };',
  },
  {
    name: '|| with a non-boolean left is a type error',
    policies: 'permit(principal, action, resource) when { 1 || true };',
  },
  {
    name: 'if with a non-boolean condition errors',
    policies: 'permit(principal, action, resource) when { if 1 then true else false };',
  },
  { name: 'when with a long errors', policies: 'permit(principal, action, resource) when { 1 };' },
  { name: 'unless', policies: 'permit(principal, action, resource) unless { principal.level > 5 };' },
  {
    name: '== across types is false, not an error',
    policies:
      'permit(principal, action, resource) when { !(1 == "1") && !(principal == "User::\\"u0\\"") && 1 != true };',
  },
  {
    name: 'records equal structurally',
    policies: 'permit(principal, action, resource) when { principal.rec == {y: [2, 1, 1], x: 1} };',
  },
  {
    name: 'sets equal unordered, duplicates ignored',
    policies: 'permit(principal, action, resource) when { [1, 2, 2] == [2, 1] && [[1], [2]] == [[2], [1]] };',
  },
  {
    name: 'contains / containsAll / containsAny / isEmpty',
    policies:
      'permit(principal, action, resource) when { [1, "a", principal].contains(User::"u0") && [1, 2, 3].containsAll([3, 1]) && [1].containsAny([2, 1]) && [].isEmpty() && !([1].isEmpty()) };',
  },
  {
    name: 'contains on a non-set errors',
    policies: 'permit(principal, action, resource) when { "abc".contains("a") };',
  },
  {
    name: 'in with a set holding a non-entity errors',
    policies: 'permit(principal, action, resource) when { principal in [Group::"g1", 1] };',
  },
  {
    name: 'in with a long on the left errors',
    policies: 'permit(principal, action, resource) when { 1 in Group::"g1" };',
  },
  {
    name: 'in with a set of entities',
    policies: 'permit(principal, action, resource) when { principal in [Group::"g9", Group::"g1"] };',
  },
  {
    name: 'an entity not in the store is only in itself',
    policies:
      'permit(principal, action, resource) when { User::"ghost" in User::"ghost" && !(User::"ghost" in Group::"g1") };',
  },
  {
    name: 'is … in short-circuits when the type differs',
    policies: 'permit(principal, action, resource) when { !(principal is Group in principal.nope) };',
  },
  { name: 'is on a non-entity errors', policies: 'permit(principal, action, resource) when { 1 is User };' },
  {
    name: 'like with escapes and unicode',
    policies:
      'permit(principal, action, resource) when { "a*b" like "a\\*b" && !("axb" like "a\\*b") && "ünï*cødé" like "ü*\\**é" && "" like "*" && "abc" like "a**c" };',
  },
  {
    name: 'like on a non-string errors',
    policies: 'permit(principal, action, resource) when { principal.level like "*" };',
  },
  {
    name: 'tags: hasTag and getTag',
    policies:
      'permit(principal, action, resource) when { principal.hasTag("k0") && principal.getTag("k0") && !principal.hasTag("k1") };',
  },
  { name: 'getTag missing errors', policies: 'permit(principal, action, resource) when { principal.getTag("k1") };' },
  {
    name: 'hasTag on an entity not in the store is false',
    policies: 'permit(principal, action, resource) when { !User::"ghost".hasTag("k0") };',
  },
  {
    name: 'getTag on an entity not in the store errors',
    policies: 'permit(principal, action, resource) when { User::"ghost".getTag("k0") };',
  },
  {
    name: 'record literal attribute and index',
    policies:
      'permit(principal, action, resource) when { {a: 1, "b c": principal}["b c"].level == 2 && {a: 1}.a == 1 };',
  },
  {
    name: 'record literal missing attribute errors',
    policies: 'permit(principal, action, resource) when { {a: 1}.b == 1 };',
  },
  { name: 'comparison of a string errors', policies: 'permit(principal, action, resource) when { "a" < "b" };' },
  {
    name: 'context read lazily; a missing context attribute errors',
    policies:
      'permit(principal, action, resource) when { context.a == 1 }; permit(principal, action, resource) when { context.missing };',
    context: { a: 1, rec: { b: [1] } },
  },
  {
    name: 'context record equality',
    policies:
      'permit(principal, action, resource) when { context.rec == {b: [1]} && context == {a: 1, rec: {b: [1]}} };',
    context: { a: 1, rec: { b: [1] } },
  },
  {
    name: 'request entity merged over the store: attributes over, parents both',
    policies:
      'permit(principal in Group::"g2", action, resource) when { principal.level == 7 && principal.name == "ab" && principal in Group::"g1" };',
    requestEntities: [{ uid: { type: 'User', id: 'u0' }, attrs: { level: 7 }, parents: [{ type: 'Group', id: 'g2' }] }],
  },
  {
    name: 'request entity reshapes an ancestor of the store',
    policies: 'permit(principal in Group::"g3", action, resource);',
    requestEntities: [{ uid: { type: 'Group', id: 'g1' }, attrs: {}, parents: [{ type: 'Group', id: 'g3' }] }],
  },
  {
    name: 'entity-valued attribute chain',
    policies:
      'permit(principal, action, resource) when { resource.owner.level == 2 && resource.owner in Group::"g1" };',
  },
  {
    name: 'action attributes are an error when the action is not an entity',
    policies: 'permit(principal, action, resource) when { action.level == 1 };',
  },
];

const DOC: EntityJson = {
  uid: { type: 'Doc', id: 'd0' },
  attrs: { owner: { __entity: { type: 'User', id: 'u0' } } },
  parents: [],
};

describe('the JS engine decides as plain Cedar', () => {
  beforeEach(() => resetFallbacks());
  for (const row of ROWS) {
    it(row.name, () => {
      const entities = row.entities ?? [...WORLD, DOC];
      const set = compilePolicySet(
        { version: 'v', policies: [{ name: 'p.cedar', text: row.policies }], entities },
        { engine: 'js' },
      );
      expect(set.js?.unsupported.size ?? -1).toBe(0);
      const req = {
        principal: row.principal ?? { type: 'User', id: 'u0' },
        action: { type: 'Action', id: 'view' },
        resource: { type: 'Doc', id: 'd0' },
        context: row.context ?? {},
        entities: row.requestEntities ?? [],
      };
      const ours = decide(set, req).result;
      const merged = [
        ...entities.filter(
          (e) => !(row.requestEntities ?? []).some((r) => JSON.stringify(r.uid) === JSON.stringify(e.uid)),
        ),
      ];
      for (const r of row.requestEntities ?? []) {
        const s = entities.find((e) => JSON.stringify(e.uid) === JSON.stringify(r.uid));
        merged.push(
          s
            ? {
                uid: r.uid,
                attrs: { ...s.attrs, ...r.attrs },
                parents: [...(s.parents ?? []), ...(r.parents ?? [])],
                tags: { ...s.tags, ...r.tags },
              }
            : r,
        );
      }
      const plain = plainIsAuthorized(enforcedPolicyTexts(set), { ...req, entities: merged });
      expect(plain.failure).toBeUndefined();
      expect({
        decision: ours.decision,
        determining: ours.determining,
        erroring: [...new Set(ours.errors.map((e) => e.policyId))].sort(),
      }).toEqual({
        decision: plain.decision,
        determining: plain.determining,
        erroring: plain.erroring,
      });
      if (!row.fallsBack) expect(Object.fromEntries(fallbackCounts())).toEqual({});
      set.retire();
    });
  }

  it('names the error kind in the message', () => {
    const set = compilePolicySet(
      {
        version: 'v',
        policies: [
          {
            name: 'p.cedar',
            text: '@id("over") permit(principal, action, resource) when { 9223372036854775807 + 1 > 0 };',
          },
        ],
        entities: [],
      },
      { engine: 'js' },
    );
    const { result } = decide(set, {
      principal: { type: 'User', id: 'u' },
      action: { type: 'Action', id: 'a' },
      resource: { type: 'R', id: 'r' },
      context: {},
    });
    expect(result.errors).toEqual([{ policyId: 'over', message: expect.stringContaining('integer overflow') }]);
  });

  it('leaves a request holding an integer past 2^53 to wasm, and says why', () => {
    const set = compilePolicySet(
      {
        version: 'v',
        policies: [{ name: 'p.cedar', text: 'permit(principal, action, resource) when { context.n > 0 };' }],
        entities: [],
      },
      { engine: 'wasm' },
    );
    const js = compilePolicySet(
      {
        version: 'v',
        policies: [{ name: 'p.cedar', text: 'permit(principal, action, resource) when { context.n > 0 };' }],
        entities: [],
      },
      { engine: 'js' },
    );
    const req = {
      principal: { type: 'User', id: 'u' },
      action: { type: 'Action', id: 'a' },
      resource: { type: 'R', id: 'r' },
      context: { n: 2 ** 60 },
    };
    expect(decide(js, req).result).toEqual(decide(set, req).result);
    expect(fallbackCounts().get('request_data')).toBe(1);
  });
});

describe('engine choice', () => {
  it('defaults to js; --engine and AUTHZ_ENGINE choose; a bad value names the field', () => {
    expect(loadConfig({ env: {} }).engine).toBe('js');
    expect(loadConfig({ env: { AUTHZ_ENGINE: 'wasm' } }).engine).toBe('wasm');
    expect(loadConfig({ env: {}, flags: { engine: 'wasm' } }).engine).toBe('wasm');
    expect(() => loadConfig({ env: {}, flags: { engine: 'fast' } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: {}, flags: { engine: 'fast' } })).toThrow(/engine/);
  });

  it('a wasm set has no JS policies; a JS set says which policies it leaves to wasm (none here)', () => {
    const text =
      'permit(principal, action, resource) when { context.ip.isInRange(ip("10.0.0.0/8")) && context.t < datetime("2026-01-01") };';
    const wasm = compilePolicySet({ version: 'v', policies: [{ name: 'p.cedar', text }] }, { engine: 'wasm' });
    const js = compilePolicySet({ version: 'v', policies: [{ name: 'p.cedar', text }] }, { engine: 'js' });
    expect(wasm.engine).toBe('wasm');
    expect(wasm.js).toBeUndefined();
    expect(js.engine).toBe('js');
    expect([...js.js!.unsupported]).toEqual([]);
    wasm.retire();
    js.retire();
  });
});
