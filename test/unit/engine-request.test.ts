/**
 * The generic entry point on requests plain Cedar refuses or reads through a
 * schema: answers must be plain Cedar's even where projection would have left
 * the offending part out.
 */
import { describe, expect, it } from 'vitest';
import { compilePolicySet } from '../../src/cedar/compile.js';
import { decide, EngineRequestError } from '../../src/cedar/engine.js';
import { EvaluationError } from '../../src/cedar/evaluate.js';
import { plainIsAuthorized } from '../support/plain-cedar.js';

const PERMIT_ALL = 'permit(principal, action, resource);';
const base = {
  principal: { type: 'User', id: 'u' },
  action: { type: 'Action', id: 'view' },
  resource: { type: 'Doc', id: 'd' },
};
const SCHEMA = `
entity User { ip?: ipaddr };
entity Doc;
action view appliesTo { principal: [User], resource: [Doc], context: { from?: ipaddr, note?: String } };
`;

describe('a request plain Cedar refuses is refused, read or not', () => {
  const rows = [
    { name: 'a bad ip in an unread context field', context: { x: { __extn: { fn: 'ip', arg: 'not-an-ip' } } } },
    { name: 'a fraction in the context', context: { x: 1.5 } },
    { name: 'a null in the context', context: { x: null } },
    { name: 'a long past 64 bits', context: { x: 2 ** 70 } },
  ];
  const set = compilePolicySet({ version: 'v', policies: [{ name: 'p.cedar', text: PERMIT_ALL }] });
  for (const row of rows) {
    it(row.name, () => {
      const req = { ...base, context: row.context as never };
      expect(plainIsAuthorized({ p: PERMIT_ALL }, { ...req, entities: [] }).failure).toBeDefined();
      // Twice: the second answer comes from the remembered shape.
      for (let i = 0; i < 2; i++) expect(() => decide(set, req)).toThrow(EvaluationError);
    });
  }

  it('a string whose content differs is not a different shape, a bad value in the same place is', () => {
    expect(decide(set, { ...base, context: { note: 'a' } }).result.decision).toBe('allow');
    expect(decide(set, { ...base, context: { note: 'b' } }).result.decision).toBe('allow');
    expect(() => decide(set, { ...base, context: { note: 2.5 } })).toThrow(EvaluationError);
  });

  it('one entity given twice in a request', () => {
    const e = { uid: { type: 'User', id: 'u' }, attrs: {}, parents: [] };
    expect(() => decide(set, { ...base, context: {}, entities: [e, e] })).toThrow();
    expect(() =>
      decide(set, { ...base, context: {}, entities: [e, { ...e, uid: { type: 'User', id: 'v' } }] }),
    ).not.toThrow();
    expect(EngineRequestError).toBeDefined();
  });
});

describe('with a schema, the request is read against it', () => {
  const policies = {
    p: 'permit(principal, action, resource) when { context has from && context.from.isInRange(ip("10.0.0.0/8")) };',
  };
  const set = compilePolicySet({ version: 'v', policies: [{ name: 'p.cedar', text: policies.p }], schema: SCHEMA });
  const cases = [
    { name: 'an ipaddr written as a plain string', context: { from: '10.1.2.3' }, expected: 'allow' },
    { name: 'the same outside the range', context: { from: '192.168.0.1' }, expected: 'deny' },
    { name: 'an undeclared context field', context: { other: 1 }, expected: 'refused' },
    { name: 'a string where the schema wants an ipaddr that is none', context: { from: 'x' }, expected: 'refused' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const req = { ...base, context: c.context as never };
      const plain = plainIsAuthorized(policies, { ...req, entities: [] }, SCHEMA);
      expect(plain.failure ? 'refused' : plain.decision).toBe(c.expected);
      if (c.expected === 'refused') expect(() => decide(set, req)).toThrow(EvaluationError);
      else expect(decide(set, req).result.decision).toBe(c.expected);
    });
  }
});
