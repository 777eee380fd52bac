/**
 * The decision cache stays exact over the server-computed context (issue 6):
 * end-user principals with claims and group parents, IP-list names, risk,
 * load, hour and weekday. Policies read each of them; a stream of requests
 * drawn from a small pool (so repeats hit) with these inputs varied is
 * answered identically with and without the cache. `load` must make a slice
 * uncacheable; the others must be part of the key whenever a policy reads them.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authorizeInput } from '../../src/pipeline/authorize-input.js';
import { BoundedTtlCache } from '../../src/cache/decision-cache.js';
import { compileBundle } from '../../src/bundle/active-bundle.js';
import type { EngineResult } from '../../src/cedar/evaluate.js';
import type { PrincipalRef } from '../../src/context/principal.js';
import type { ContextFields } from '../../src/context/context-fields.js';
import { checkRequestToInput } from '../../src/envoy/check-request.js';
import { specToCheckRequest } from '../support/generated-sets.js';

const CONDITIONS = [
  'context.source.lists.contains("tor")',
  'context.source.lists.containsAny(["tor", "vpn"])',
  'context has risk && context.risk > 50',
  'context has risk',
  'context.hour >= 9 && context.hour < 17',
  'context.weekday < 6',
  'context.load > 80',
  'principal is User && principal in Group::"admins"',
  'principal is User && principal has email && principal.email like "*@a.example"',
  'principal is User && principal has level && principal.level > 2',
  'context.mode == "normal"',
  'true',
];

const policy = fc
  .record({
    effect: fc.constantFrom('permit', 'permit', 'forbid'),
    a: fc.constantFrom(...CONDITIONS),
    b: fc.option(fc.constantFrom(...CONDITIONS), { nil: undefined }),
  })
  .map((p) => `${p.effect} (principal, action, resource) when { ${p.b ? `(${p.a}) && (${p.b})` : p.a} };`);

const principal: fc.Arbitrary<PrincipalRef | undefined> = fc.oneof(
  fc.constant(undefined),
  fc
    .record({
      sub: fc.constantFrom('alice', 'bob'),
      groups: fc.subarray(['admins', 'staff']),
      email: fc.option(fc.constantFrom('alice@a.example', 'bob@b.example'), { nil: undefined }),
      level: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
    })
    .map((u) => ({
      type: 'User',
      id: u.sub,
      attrs: { ...(u.email ? { email: u.email } : {}), ...(u.level !== undefined ? { level: u.level } : {}) },
      parents: u.groups.map((g) => ({ type: 'Group', id: g })),
    })),
);

const fields: fc.Arbitrary<ContextFields> = fc
  .record({
    sourceLists: fc.subarray(['tor', 'vpn']),
    risk: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
    load: fc.integer({ min: 0, max: 100 }),
    hour: fc.integer({ min: 0, max: 23 }),
    weekday: fc.integer({ min: 1, max: 7 }),
  })
  .map((f) => {
    const out: ContextFields = { sourceLists: f.sourceLists, load: f.load, hour: f.hour, weekday: f.weekday };
    if (f.risk !== undefined) out.risk = f.risk;
    return out;
  });

const request = fc.record({ principal, fields, workload: fc.constantFrom('', 'spiffe://cluster.local/ns/a/sa/w') });

function inputFor(workload: string) {
  const res = checkRequestToInput(
    specToCheckRequest({
      principal: workload,
      method: 'GET',
      network: false,
      host: 's0',
      path: '/a',
      headers: {},
      query: '',
      noise: '',
      timeSeconds: 1_780_000_000,
      ext: {},
    }),
  );
  if (!res.ok) throw new Error(res.message);
  return res.input;
}

describe('cached decisions equal uncached decisions over identity and context fields', () => {
  it('over random streams of users, lists, risk, load, hour and weekday', () => {
    fc.assert(
      fc.property(
        fc.array(policy, { minLength: 1, maxLength: 8 }),
        fc.array(request, { minLength: 1, maxLength: 5 }),
        fc.array(fc.record({ pick: fc.nat(), mutate: fc.option(fields, { nil: undefined }) }), {
          minLength: 5,
          maxLength: 40,
        }),
        (policies, pool, steps) => {
          const set = compileBundle({ version: 'v', policies: [{ name: 'p.cedar', text: policies.join('\n') }] });
          const cache = new BoundedTtlCache<EngineResult>(1000, 60_000);
          try {
            for (const s of steps) {
              const r = pool[s.pick % pool.length];
              const options = { principal: r.principal, fields: s.mutate ?? r.fields };
              const input = inputFor(r.workload);
              const plain = authorizeInput(input, set, 'id', options);
              const cached = authorizeInput(input, set, 'id', { ...options, cache });
              expect(cached.decision).toEqual(plain.decision);
            }
          } finally {
            set.policySet.retire();
          }
        },
      ),
      { numRuns: 150 },
    );
  }, 60_000);

  const rows = [
    {
      name: 'a policy reading load is never cached',
      text: 'permit (principal, action, resource) when { context.load < 50 };',
      outcome: 'uncacheable',
    },
    {
      name: 'a policy reading the hour is cached (keyed by the hour)',
      text: 'permit (principal, action, resource) when { context.hour < 12 };',
      outcome: 'hit',
    },
    {
      name: 'a policy reading IP lists is cached (keyed by the lists)',
      text: 'forbid (principal, action, resource) when { context.source.lists.contains("tor") };',
      outcome: 'hit',
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const set = compileBundle({ version: 'v', policies: [{ name: 'p.cedar', text: row.text }] });
      const cache = new BoundedTtlCache<EngineResult>(10, 60_000);
      const f: ContextFields = { sourceLists: ['tor'], load: 10, hour: 9, weekday: 1 };
      authorizeInput(inputFor(''), set, 'id', { fields: f, cache });
      expect(authorizeInput(inputFor(''), set, 'id', { fields: f, cache }).cache).toBe(row.outcome);
      set.policySet.retire();
    });
  }

  it('a slice mixing a load policy with stable ones caches the stable part and decides the load policy per request', () => {
    const text = [
      '@id("morning") permit (principal, action, resource) when { context.hour < 12 };',
      '@id("shed") forbid (principal, action, resource) when { context.load >= 90 };',
      '@id("tor") forbid (principal, action, resource) when { context.source.lists.contains("tor") };',
    ].join('\n');
    const set = compileBundle({ version: 'v', policies: [{ name: 'p.cedar', text }] });
    const cache = new BoundedTtlCache<EngineResult>(10, 60_000);
    const at = (load: number, sourceLists: string[] = []) => ({
      fields: { sourceLists, load, hour: 9, weekday: 1 } as ContextFields,
      cache,
    });
    expect(authorizeInput(inputFor(''), set, 'id', at(10))).toMatchObject({
      cache: 'miss',
      decision: { kind: 'allow', policies: ['morning'] },
    });
    expect(authorizeInput(inputFor(''), set, 'id', at(95))).toMatchObject({
      cache: 'hit',
      decision: { kind: 'deny', policies: ['shed'] },
    });
    expect(authorizeInput(inputFor(''), set, 'id', at(10))).toMatchObject({
      cache: 'hit',
      decision: { kind: 'allow', policies: ['morning'] },
    });
    // Both forbids satisfied: the cached one and the evaluated one determine together, in policy order.
    expect(authorizeInput(inputFor(''), set, 'id', at(95, ['tor']))).toMatchObject({
      cache: 'miss',
      decision: { kind: 'deny', policies: ['shed', 'tor'] },
    });
    expect(authorizeInput(inputFor(''), set, 'id', at(95, ['tor']))).toMatchObject({
      cache: 'hit',
      decision: { kind: 'deny', policies: ['shed', 'tor'] },
    });
    set.policySet.retire();
  });
});
