import { describe, expect, it } from 'vitest';
import { cedar, type PolicyJson } from '../../src/cedar/cedar-wasm.js';
import { contextKey } from '../../src/cedar/context-key.js';
import { projectContext, PRESENCE_PLACEHOLDER } from '../../src/cedar/projection.js';
import { analysePolicies, describeReads, readsVolatile } from '../../src/cedar/reads.js';

function reads(...texts: string[]) {
  const json = texts.map((t) => {
    const r = cedar.policyToJson(t);
    if (r.type !== 'success') throw new Error(JSON.stringify(r.errors));
    return { json: r.json as PolicyJson };
  });
  return analysePolicies(json);
}

describe('what policies read', () => {
  const rows: { name: string; policies: string[]; context: string[]; entities: string[]; attrs?: string[] }[] = [
    { name: 'nothing', policies: ['permit (principal, action, resource);'], context: [], entities: [] },
    {
      name: 'one context field, tested against a literal',
      policies: ['permit (principal, action, resource) when { context.path == "/a" };'],
      context: ['context.path (1 test)'],
      entities: [],
    },
    {
      name: 'one context field, read as a value',
      policies: ['permit (principal, action, resource) when { ["/a", "/b"].contains(context.path) };'],
      context: ['context.path'],
      entities: [],
    },
    {
      name: 'like and == on the same field are two tests',
      policies: ['permit (principal, action, resource) when { context.path like "/a/*" || "/b" == context.path };'],
      context: ['context.path (2 tests)'],
      entities: [],
    },
    {
      name: 'one header, guarded by has',
      policies: [
        'permit (principal, action, resource) when { context.headers has "x-user" && context.headers["x-user"] == "alice" };',
      ],
      context: ['context.headers.x-user (1 test)'],
      entities: [],
    },
    {
      name: 'a header only tested for presence',
      policies: ['forbid (principal, action, resource) when { context.headers has "x-block" };'],
      context: ['context.headers.x-block (presence)'],
      entities: [],
    },
    {
      name: 'a whole record compared',
      policies: ['permit (principal, action, resource) when { context.headers == {} };'],
      context: ['context.headers'],
      entities: [],
    },
    {
      name: 'a nested has chain',
      policies: ['permit (principal, action, resource) when { context has source.ip };'],
      context: ['context.source.ip (presence)'],
      entities: [],
    },
    {
      name: 'an extension call on an ip',
      policies: ['permit (principal, action, resource) when { context.source.ip.isInRange(ip("10.0.0.0/8")) };'],
      context: ['context.source.ip'],
      entities: [],
    },
    {
      name: 'the time',
      policies: ['permit (principal, action, resource) when { context.time < datetime("2030-01-01T00:00:00Z") };'],
      context: ['context.time'],
      entities: [],
    },
    {
      name: 'a record built from context',
      policies: ['permit (principal, action, resource) when { {a: context.path}.a == "/" };'],
      context: ['context.path'],
      entities: ['all'],
      attrs: ['a'],
    },
    {
      name: 'two context fields compared with each other',
      policies: ['permit (principal, action, resource) when { context.path == context.host };'],
      context: ['context.host', 'context.path'],
      entities: [],
    },
    {
      name: 'the whole context',
      policies: ['permit (principal, action, resource) when { context == {} };'],
      context: ['context'],
      entities: [],
    },
    {
      name: 'principal in a group (scope)',
      policies: ['permit (principal in Group::"admins", action, resource);'],
      context: [],
      entities: ['principal'],
    },
    {
      name: 'action group (scope)',
      policies: ['permit (principal, action in Action::"read", resource);'],
      context: [],
      entities: ['action'],
    },
    {
      name: '== and is need no entity data',
      policies: ['permit (principal == Workload::"w", action == Action::"GET", resource is Service);'],
      context: [],
      entities: [],
    },
    {
      name: 'is ... in needs the resource',
      policies: ['permit (principal, action, resource is Service in Group::"g");'],
      context: [],
      entities: ['resource'],
    },
    {
      name: 'a resource attribute',
      policies: ['forbid (principal, action, resource) when { resource has maintenance && resource.maintenance };'],
      context: [],
      entities: ['resource'],
      attrs: ['maintenance'],
    },
    {
      name: 'attribute of an attribute reaches further',
      policies: ['permit (principal, action, resource) when { principal.manager.team == "x" };'],
      context: [],
      entities: ['all', 'principal'],
      attrs: ['manager', 'team'],
    },
    {
      name: 'an entity literal',
      policies: ['permit (principal, action, resource) when { Group::"g".open };'],
      context: [],
      entities: ['all'],
      attrs: ['open'],
    },
    {
      name: 'principal in a group (condition)',
      policies: ['permit (principal, action, resource) unless { principal in Group::"blocked" };'],
      context: [],
      entities: ['principal'],
    },
    {
      name: 'tags',
      policies: ['permit (principal, action, resource) when { resource.hasTag("k") };'],
      context: [],
      entities: ['resource'],
    },
    {
      name: 'union over several policies',
      policies: [
        'permit (principal, action, resource) when { context.path == "/a" };',
        'forbid (principal, action, resource) when { context.headers has "x-b" };',
      ],
      context: ['context.headers.x-b (presence)', 'context.path (1 test)'],
      entities: [],
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const d = describeReads(reads(...row.policies));
      expect(d.context).toEqual(row.context);
      expect(d.entities).toEqual(row.entities);
      expect(d.entityAttrs).toEqual(row.attrs ?? []);
    });
  }

  it('time and load make a set uncacheable; other fields do not', () => {
    expect(
      readsVolatile(
        reads('permit (principal, action, resource) when { context.time < datetime("2030-01-01T00:00:00Z") };'),
      ),
    ).toBe(true);
    expect(readsVolatile(reads('permit (principal, action, resource) when { context == {} };'))).toBe(true);
    expect(readsVolatile(reads('permit (principal, action, resource) when { context.path == "/" };'))).toBe(false);
  });
});

describe('projectContext', () => {
  const context = {
    path: '/a',
    headers: { 'x-user': 'alice', 'x-block': 'yes', 'x-other': 'o' },
    source: { principal: 'p', ip: { __extn: { fn: 'ip', arg: '10.0.0.1' } } },
  };
  const rows = [
    {
      name: 'keeps only what is read',
      policy: 'permit (principal, action, resource) when { context.headers["x-user"] == "a" };',
      expected: { headers: { 'x-user': 'alice' } },
    },
    {
      name: 'presence-only values are replaced',
      policy: 'forbid (principal, action, resource) when { context.headers has "x-block" };',
      expected: { headers: { 'x-block': PRESENCE_PLACEHOLDER } },
    },
    {
      name: 'absent stays absent',
      policy: 'forbid (principal, action, resource) when { context.headers has "x-none" };',
      expected: { headers: {} },
    },
    {
      name: 'extension values are kept whole',
      policy: 'permit (principal, action, resource) when { context.source.ip.isLoopback() };',
      expected: { source: { ip: { __extn: { fn: 'ip', arg: '10.0.0.1' } } } },
    },
    {
      name: 'a value read inside but not a record is kept whole',
      policy: 'permit (principal, action, resource) when { context.path.x == "a" };',
      expected: { path: '/a' },
    },
    { name: 'nothing read, nothing sent', policy: 'permit (principal, action, resource);', expected: {} },
  ];
  for (const row of rows) {
    it(row.name, () => expect(projectContext(context, reads(row.policy).context)).toEqual(row.expected));
  }

  it('a header named __proto__ is a key, not a prototype', () => {
    const projected = projectContext(
      { headers: JSON.parse('{"__proto__": "x"}') },
      reads('permit (principal, action, resource) when { context.headers["__proto__"] == "x" };').context,
    );
    expect(Object.getPrototypeOf(projected.headers)).toBe(Object.prototype);
    expect(JSON.stringify(projected)).toBe('{"headers":{"__proto__":"x"}}');
  });
});

describe('contextKey', () => {
  const reads1 = reads(
    'permit (principal, action, resource) when { context.path like "/api/*" && context.headers["x-tenant"] == "t-1" };',
  );
  const key = (path: string, tenant?: string) =>
    JSON.stringify(contextKey({ path, headers: tenant === undefined ? {} : { 'x-tenant': tenant } }, reads1.context));

  it('strings that pass and fail the same tests share a key', () => {
    expect(key('/api/items/1', 't-1')).toBe(key('/api/items/2', 't-1'));
    expect(key('/other/1', 't-9')).toBe(key('/elsewhere', 't-8'));
  });

  it('a different outcome, or presence, makes a different key', () => {
    expect(key('/api/items/1', 't-1')).not.toBe(key('/other', 't-1'));
    expect(key('/api/items/1', 't-1')).not.toBe(key('/api/items/1', 't-2'));
    expect(key('/api/items/1', 't-2')).not.toBe(key('/api/items/1'));
  });

  it('a value that is not a string is keyed as itself', () => {
    const k = (v: unknown) => JSON.stringify(contextKey({ path: v as string, headers: {} }, reads1.context));
    expect(k(7)).not.toBe(k(8));
    expect(k(7)).not.toBe(k('/x'));
  });

  it('Cedar still gets the value itself', () => {
    expect(
      projectContext({ path: '/api/items/1', headers: { 'x-tenant': 't-1', other: 'x' } }, reads1.context),
    ).toEqual({ path: '/api/items/1', headers: { 'x-tenant': 't-1' } });
  });
});
