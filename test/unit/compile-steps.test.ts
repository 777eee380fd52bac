/**
 * The server's compile (Cedar's front end in a worker, the assembly in steps)
 * refuses and accepts exactly what the one-shot compile on this thread does.
 */
import { describe, expect, it } from 'vitest';
import { compilePolicySetInChunks } from '../../src/cedar/compile-async.js';
import { compilePolicySet } from '../../src/cedar/compile.js';
import { readWithCedar } from '../../src/cedar/cedar-front-end.js';
import { readWithCedarInWorker } from '../../src/cedar/compile-in-worker.js';
import type { PolicySetSource } from '../../src/cedar/policy-set-source.js';
import { ActivePolicySet } from '../../src/bundle/active-policy-set.js';

/** A set this large was validated in a worker before every compile was; kept as a size that exercises it. */
const SCHEMA_WORKER_MIN_POLICIES = 100;

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
  it(`accepts a valid set of ${SCHEMA_WORKER_MIN_POLICIES}+ policies with a schema (validated in the worker)`, async () => {
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
    const { set, workerMs } = await compilePolicySetInChunks(source);
    expect(workerMs).toBeGreaterThan(0);
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

  it('keeps every policy of a large file, in source order, as the one-shot compile does', async () => {
    const source = { version: 'v', policies: [{ name: 'big.cedar', text: bigFile() }] };
    const { set } = await compilePolicySetInChunks(source);
    const oneShot = compilePolicySet(source);
    expect([...set.policies.keys()]).toEqual([...oneShot.policies.keys()]);
    expect([...set.policies.keys()].slice(0, 3)).toEqual(['p0', 'p1', 'p2']);
    // JSON kept as text is still there for whoever reads it.
    expect(set.policies.get('p7')!.json).toEqual(oneShot.policies.get('p7')!.json);
    set.retire();
    oneShot.retire();
  });

  it("the worker's answer is the same data as Cedar's front end on this thread", async () => {
    const source: PolicySetSource = {
      version: 'v',
      policies: [
        {
          name: 'a.cedar',
          text: '@id("a") @status("403") @message("no") forbid(principal, action, resource) when { principal.name like "a*" };\n@shadow permit(principal, action, resource);',
        },
        { name: 'b.cedar', text: bigFile() },
      ],
      schema:
        'entity User { name: String, ip: ipaddr }; action view appliesTo { principal: [User], resource: [User] };',
      entities: [{ uid: { type: 'User', id: 'u' }, attrs: { name: 'x', ip: '10.0.0.1' }, parents: [] }],
    };
    source.policies[1].text = source.policies[1].text.replaceAll('context.path', 'principal.name');
    expect(await readWithCedarInWorker(source)).toEqual(readWithCedar(source));
  });
});

describe('a compile worker that fails', () => {
  const source: PolicySetSource = { version: 'v', policies: [{ name: 'big.cedar', text: bigFile() }] };

  it('past its time limit is stopped, and the compile refused with one message', async () => {
    await expect(compilePolicySetInChunks(source, { worker: { timeLimitMs: 1 } })).rejects.toThrow(
      /^Cedar compile worker did not finish within 1 ms; stopped it$/,
    );
  });

  it('that runs out of its heap fails the compile with one message; the last good set keeps serving', async () => {
    const policySet = new ActivePolicySet({ worker: { maxHeapMb: 32 } });
    const good = { version: 'v1', policies: [{ name: 'a.cedar', text: 'permit(principal, action, resource);' }] };
    expect((await policySet.activate(good)).ok).toBe(true);
    // 200,000 entities do not fit a 32 MB heap: the worker dies reading them, this process does not.
    const entities = Array.from({ length: 200_000 }, (_, i) => ({
      uid: { type: 'User', id: `user-${i}` },
      attrs: { name: `n${i}` },
      parents: [],
    }));
    const result = await policySet.activate({ ...good, version: 'v2', entities });
    expect(result.ok).toBe(false);
    expect(policySet.lastError?.message).toMatch(
      /^Cedar compile worker (was killed by SIGABRT|exited with code \d+) before answering \(.*heap out of memory\)$/,
    );
    expect(policySet.lastError?.version).toBe('v2');
    expect(policySet.current?.version).toBe('v1');
    policySet.current?.policySet.retire();
  });
});
