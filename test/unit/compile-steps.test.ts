/** The server's stepped compile refuses and accepts exactly what the one-shot compile does. */
import { describe, expect, it } from 'vitest';
import {
  compilePolicySetInChunks,
  SCHEMA_WORKER_MIN_POLICIES,
  SPLIT_PIECE_CHARS,
} from '../../src/cedar/compile-async.js';
import { compilePolicySet } from '../../src/cedar/compile.js';
import type { PolicySetSource } from '../../src/cedar/policy-set-source.js';

const bigFile = (extra = '') => {
  const policies = Array.from(
    { length: 120 },
    (_, i) =>
      `@id("p${i}") permit (principal, action, resource) when { context.path == "/route/${i}/with/a/longer/path" };`,
  );
  return policies.join('\n') + extra;
};

const sources: { name: string; source: PolicySetSource }[] = [
  {
    name: 'a parse error',
    source: { version: 'v', policies: [{ name: 'a.cedar', text: 'permit(principal, action resource);' }] },
  },
  {
    name: 'a parse error deep in a large file',
    source: { version: 'v', policies: [{ name: 'big.cedar', text: bigFile('\npermit(principal, action resource);') }] },
  },
  {
    name: 'a bad annotation',
    source: {
      version: 'v',
      policies: [{ name: 'a.cedar', text: '@status("abc") forbid(principal, action, resource);' }],
    },
  },
  {
    name: 'a duplicate id across files',
    source: {
      version: 'v',
      policies: [
        { name: 'a.cedar', text: '@id("x") permit(principal, action, resource);' },
        { name: 'b.cedar', text: '@id("x") permit(principal, action, resource);' },
      ],
    },
  },
  {
    name: 'a template',
    source: {
      version: 'v',
      policies: [{ name: 'a.cedar', text: 'permit(principal == ?principal, action, resource);' }],
    },
  },
  {
    name: 'a schema violation',
    source: {
      version: 'v',
      policies: [{ name: 'a.cedar', text: 'permit(principal, action, resource) when { principal.nmae == "x" };' }],
      schema: 'entity User { name: String }; action view appliesTo { principal: [User], resource: [User] };',
    },
  },
  {
    name: `a schema violation in a set of ${SCHEMA_WORKER_MIN_POLICIES}+ policies (checked in a worker)`,
    source: {
      version: 'v',
      policies: [
        {
          name: 'many.cedar',
          text:
            Array.from(
              { length: SCHEMA_WORKER_MIN_POLICIES },
              (_, i) => `@id("ok${i}") permit(principal, action, resource) when { principal.name == "${i}" };`,
            ).join('\n') + '\n@id("typo") permit(principal, action, resource) when { principal.nmae == "x" };',
        },
      ],
      schema: 'entity User { name: String }; action view appliesTo { principal: [User], resource: [User] };',
    },
  },
  {
    name: `bad entities with a schema, in a set of ${SCHEMA_WORKER_MIN_POLICIES}+ policies (checked in a worker)`,
    source: {
      version: 'v',
      policies: [
        {
          name: 'many.cedar',
          text: Array.from(
            { length: SCHEMA_WORKER_MIN_POLICIES },
            (_, i) => `@id("ok${i}") permit(principal, action, resource);`,
          ).join('\n'),
        },
      ],
      schema: 'entity User { name: String }; action view appliesTo { principal: [User], resource: [User] };',
      entities: [{ uid: { type: 'User', id: 'u' }, attrs: { name: 7 }, parents: [] }],
    },
  },
  {
    name: 'bad entities',
    source: {
      version: 'v',
      policies: [{ name: 'a.cedar', text: 'permit(principal, action, resource);' }],
      entities: { not: 'an array' },
    },
  },
];

describe('compilePolicySetInChunks', () => {
  it(`accepts a valid set of ${SCHEMA_WORKER_MIN_POLICIES}+ policies with a schema (validated in a worker)`, async () => {
    const source = {
      version: 'v',
      policies: [
        {
          name: 'many.cedar',
          text: Array.from(
            { length: SCHEMA_WORKER_MIN_POLICIES },
            (_, i) => `@id("ok${i}") permit(principal, action, resource) when { principal.name == "${i}" };`,
          ).join('\n'),
        },
      ],
      schema: 'entity User { name: String }; action view appliesTo { principal: [User], resource: [User] };',
      entities: [{ uid: { type: 'User', id: 'u' }, attrs: { name: 'x' }, parents: [] }],
    };
    const { set, validatedIn } = await compilePolicySetInChunks(source);
    expect(validatedIn).toBe('worker');
    expect(set.policies.size).toBe(SCHEMA_WORKER_MIN_POLICIES);
    expect(set.hasSchema).toBe(true);
    set.retire();
  });

  for (const row of sources) {
    it(`refuses ${row.name} with the same message`, async () => {
      let expected = '';
      try {
        compilePolicySet(row.source).retire();
      } catch (err) {
        expected = (err as Error).message;
      }
      expect(expected).not.toBe('');
      await expect(compilePolicySetInChunks(row.source)).rejects.toThrow(expected);
    });
  }

  it(`cuts a file over ${SPLIT_PIECE_CHARS} characters into pieces and keeps every policy, in order`, async () => {
    const source = { version: 'v', policies: [{ name: 'big.cedar', text: bigFile() }] };
    expect(source.policies[0].text.length).toBeGreaterThan(SPLIT_PIECE_CHARS);
    const { set, steps } = await compilePolicySetInChunks(source);
    const oneShot = compilePolicySet(source);
    expect([...set.policies.keys()]).toEqual([...oneShot.policies.keys()]);
    expect([...set.policies.keys()].slice(0, 3)).toEqual(['p0', 'p1', 'p2']);
    expect(steps).toBeGreaterThan(0);
    // JSON kept as text is still there for whoever reads it.
    expect(set.policies.get('p7')!.json.effect).toBe('permit');
    set.retire();
    oneShot.retire();
  });
});
