import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { authorizeInput } from '../../src/pipeline/authorize-input.js';
import { compilePolicyDirectory } from '../../src/bundle/format/compile-policy-directory.js';
import { inputToCedarRequest } from '../../src/pipeline/cedar-request.js';
import { compilePolicySet } from '../../src/cedar/compile.js';
import { bundleOf } from '../../src/bundle/active-bundle.js';
import { engineResultToDecision } from '../../src/pipeline/engine-decision.js';
import { evaluate } from '../../src/cedar/evaluate.js';
import { psetIdStats } from '../../src/cedar/pset-ids.js';
import { MAX_POLICIES_PER_PSET, scopeMatches, SliceRetiredError } from '../../src/cedar/slicing.js';
import { checkRequestToInput } from '../../src/envoy/check-request.js';
import { simpleRequestToCheckRequest, type SimpleRequest } from '../../src/envoy/simple-request.js';

const EXAMPLE = path.resolve(import.meta.dirname, '../../policies');
const SVC = (id: string) => `Service::${JSON.stringify(id)}`;

describe('scopeMatches', () => {
  const key = SVC('orders');
  const ancestors = new Set([`Group::"shop"`]);
  const rows = [
    { name: 'All', c: { op: 'All' }, expected: true },
    { name: '== same', c: { op: '==', entity: { type: 'Service', id: 'orders' } }, expected: true },
    { name: '== other', c: { op: '==', entity: { type: 'Service', id: 'payments' } }, expected: false },
    {
      name: '== __entity form',
      c: { op: '==', entity: { __entity: { type: 'Service', id: 'orders' } } },
      expected: true,
    },
    { name: 'in itself', c: { op: 'in', entity: { type: 'Service', id: 'orders' } }, expected: true },
    { name: 'in an ancestor', c: { op: 'in', entity: { type: 'Group', id: 'shop' } }, expected: true },
    { name: 'in a stranger', c: { op: 'in', entity: { type: 'Group', id: 'ops' } }, expected: false },
    {
      name: 'in a list with an ancestor',
      c: {
        op: 'in',
        entities: [
          { type: 'Group', id: 'ops' },
          { type: 'Group', id: 'shop' },
        ],
      },
      expected: true,
    },
    { name: 'is the type', c: { op: 'is', entity_type: 'Service' }, expected: true },
    { name: 'is another type', c: { op: 'is', entity_type: 'Workload' }, expected: false },
    {
      name: 'is ... in an ancestor',
      c: { op: 'is', entity_type: 'Service', in: { entity: { type: 'Group', id: 'shop' } } },
      expected: true,
    },
    {
      name: 'is ... in a stranger',
      c: { op: 'is', entity_type: 'Service', in: { entity: { type: 'Group', id: 'ops' } } },
      expected: false,
    },
    { name: 'an unknown form keeps the policy', c: { op: 'someday' }, expected: true },
  ];
  for (const row of rows) it(row.name, () => expect(scopeMatches(row.c, 'Service', key, ancestors)).toBe(row.expected));
});

describe('slices of the example bundle', () => {
  it("a request evaluates its service's policies plus the mesh-wide ones", async () => {
    const set = (await compilePolicyDirectory(EXAMPLE)).policySet;
    const ids = (action: string, service: string) =>
      set.slices.sliceFor({ type: 'Action', id: action }, { type: 'Service', id: service }).matching.map((p) => p.id);
    const meshWide = ['admin-api-business-hours', 'shed-anonymous-under-load'];
    expect(ids('GET', 'orders')).toEqual([
      ...meshWide,
      'public-paths',
      'admins-full-access',
      'admin-api-admins-only',
      'orders-frontend-access',
      'orders-no-anonymous',
      'blocklisted-networks',
      'orders-support-read',
    ]);
    expect(ids('DELETE', 'payments')).toEqual([
      ...meshWide,
      'admins-full-access',
      'admin-api-admins-only',
      'maintenance-lockdown',
      'payments-no-delete',
      'high-risk-step-up',
      'blocklisted-networks',
    ]);
    expect(ids('GET', 'unknown-service')).toEqual([
      ...meshWide,
      'public-paths',
      'admins-full-access',
      'admin-api-admins-only',
      'blocklisted-networks',
    ]);
    set.retire();
  });

  it('answers like the whole set for every method × service × caller × path', async () => {
    const bundle = await compilePolicyDirectory(EXAMPLE);
    const set = bundle.policySet;
    const callers = [
      undefined,
      'spiffe://cluster.local/ns/shop/sa/frontend',
      'spiffe://cluster.local/ns/shop/sa/orders',
      'spiffe://cluster.local/ns/ops/sa/admin-console',
      'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account',
    ];
    let compared = 0;
    for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PROPFIND'])
      for (const host of ['frontend', 'orders', 'payments', 'other'])
        for (const principal of callers)
          for (const p of ['/healthz', '/admin/users', '/orders/1', '/payments/charge', '/payments/7/status']) {
            const req: SimpleRequest = { method, path: p, host, principal };
            const res = checkRequestToInput(simpleRequestToCheckRequest(req));
            if (!res.ok) throw new Error(res.message);
            const full = evaluate(set, inputToCedarRequest(res.input, bundle), set.psetId);
            expect(authorizeInput(res.input, bundle, 'id').decision, `${method} ${host}${p} as ${principal}`).toEqual(
              engineResultToDecision(set, full, 'id'),
            );
            compared++;
          }
    expect(compared).toBe(5 * 4 * 5 * 5);
    set.retire();
  });
});

describe('chunks', () => {
  const many = (n: number, resource = 'resource') =>
    Array.from(
      { length: n },
      (_, i) => `@id("p${i}") permit (principal, action, ${resource}) when { context.path == "/${i}" };`,
    ).join('\n');

  it(`a slice over ${MAX_POLICIES_PER_PSET} policies is split, answers combine, and shared chunks are preparsed once`, () => {
    const text = `${many(40)}\n${Array.from({ length: 20 }, (_, i) => `@id("s${i}") forbid (principal, action, resource == Service::"svc${i % 2}") when { context.path == "/${i}" };`).join('\n')}`;
    const set = compilePolicySet({ version: 'v', policies: [{ name: 'a.cedar', text }] });
    const s0 = set.slices.sliceFor({ type: 'Action', id: 'GET' }, { type: 'Service', id: 'svc0' });
    const s1 = set.slices.sliceFor({ type: 'Action', id: 'GET' }, { type: 'Service', id: 'svc1' });
    expect(s0.matching).toHaveLength(50);
    expect(s0.psetIds.length).toBe(Math.ceil(10 / MAX_POLICIES_PER_PSET) + Math.ceil(40 / MAX_POLICIES_PER_PSET));
    // The 40 service-independent policies sit in the same chunks for both services.
    expect(s0.psetIds.slice(1)).toEqual(s1.psetIds.slice(1));
    const input = (p: string) => {
      const res = checkRequestToInput(simpleRequestToCheckRequest({ method: 'GET', path: p, host: 'svc0' }));
      if (!res.ok) throw new Error(res.message);
      return res.input;
    };
    expect(authorizeInput(input('/3'), bundleOf({ version: 'v', policies: [] }, set), 'id').decision).toMatchObject({
      kind: 'allow',
      policies: ['p3'],
    });
    expect(authorizeInput(input('/4'), bundleOf({ version: 'v', policies: [] }, set), 'id').decision).toMatchObject({
      kind: 'deny',
      reason: 'policy_forbid',
      policies: ['s4'],
    });
    expect(authorizeInput(input('/99'), bundleOf({ version: 'v', policies: [] }, set), 'id').decision).toMatchObject({
      kind: 'deny',
      reason: 'no_permit',
      policies: [],
    });
    set.retire();
  });

  it('a retired set refuses to evaluate and gives its preparsed ids back', () => {
    // The wasm engine preparses each slice it makes (the JS engine only those that fall back).
    const set = compilePolicySet({ version: 'v', policies: [{ name: 'a.cedar', text: many(3) }] }, { engine: 'wasm' });
    set.slices.sliceFor({ type: 'Action', id: 'GET' }, { type: 'Service', id: 'x' });
    const before = psetIdStats().free;
    set.retire();
    expect(psetIdStats().free).toBe(before + 1);
    expect(() => set.slices.sliceFor({ type: 'Action', id: 'GET' }, { type: 'Service', id: 'x' })).toThrow(
      SliceRetiredError,
    );
    const res = checkRequestToInput(simpleRequestToCheckRequest({ method: 'GET', path: '/1', host: 'x' }));
    if (!res.ok) throw new Error(res.message);
    expect(authorizeInput(res.input, bundleOf({ version: 'v', policies: [] }, set), 'id').decision).toMatchObject({
      kind: 'deny',
      reason: 'evaluation_error',
    });
  });
});

describe('policy order', () => {
  it('a file of more than ten policies keeps its written order (ids and first-determining)', () => {
    const text = Array.from(
      { length: 25 },
      (_, i) => `forbid (principal, action, resource) when { context.path like "/${i}*" };`,
    ).join('\n');
    const set = compilePolicySet({ version: 'v', policies: [{ name: 'a.cedar', text }] });
    expect([...set.policies.values()].map((p) => p.id)).toEqual(Array.from({ length: 25 }, (_, i) => `a.cedar#${i}`));
    expect(set.policies.get('a.cedar#12')!.text).toContain('"/12*"');
    set.retire();
  });
});
