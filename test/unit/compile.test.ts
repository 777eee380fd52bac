import { describe, expect, it } from 'vitest';
import { compilePolicySet, PolicySetError } from '../../src/cedar/compile.js';
import { REASONS, REASON_CODES } from '../../src/reasons.js';

function compile(text: string, extra: { schema?: string; entities?: unknown } = {}) {
  return compilePolicySet({ version: 'v', policies: [{ name: 'a.cedar', text }], ...extra });
}

describe('compilePolicySet', () => {
  it('ids come from @id, else <file>#<n>', () => {
    const set = compile(
      '@id("named") permit(principal, action, resource);\nforbid(principal, action, resource) when { false };',
    );
    expect([...set.policies.keys()]).toEqual(['named', 'a.cedar#1']);
  });

  const refusals = [
    {
      name: 'a parse error names the file',
      text: 'permit(principal, action resource);',
      error: /Cedar parse error: a\.cedar:1:\d+: /,
    },
    {
      name: 'a bad @status is refused',
      text: '@status("abc") forbid(principal, action, resource);',
      error: /@status\("abc"\)/,
    },
    {
      name: '@status out of range is refused',
      text: '@status("99") forbid(principal, action, resource);',
      error: /between 200 and 599/,
    },
    {
      name: 'a bad @retry_after is refused',
      text: '@retry_after("soon") forbid(principal, action, resource);',
      error: /whole number of seconds/,
    },
    {
      name: 'duplicate @id is refused',
      text: '@id("x") permit(principal, action, resource);\n@id("x") forbid(principal, action, resource);',
      error: /used twice/,
    },
    {
      name: 'templates are refused',
      text: 'permit(principal == ?principal, action, resource);',
      error: /templates are not supported/,
    },
  ];
  for (const row of refusals) {
    it(row.name, () => expect(() => compile(row.text)).toThrow(row.error));
  }

  it('policies are validated against the schema', () => {
    const schema = 'entity User { name: String }; action view appliesTo { principal: [User], resource: [User] };';
    expect(() => compile('permit(principal, action, resource) when { principal.nmae == "x" };', { schema })).toThrow(
      PolicySetError,
    );
    expect(() => compile('permit(principal, action, resource) when { principal.nmae == "x" };', { schema })).toThrow(
      /do not validate/,
    );
    expect(compile('permit(principal, action, resource) when { principal.name == "x" };', { schema }).hasSchema).toBe(
      true,
    );
  });

  it('entities.json must be an array of valid entities', () => {
    expect(() => compile('permit(principal, action, resource);', { entities: { not: 'array' } })).toThrow(/JSON array/);
    expect(() =>
      compile('permit(principal, action, resource);', {
        entities: [
          { uid: { type: 'A', id: 'a' }, attrs: {}, parents: [] },
          { uid: { type: 'A', id: 'a' }, attrs: {}, parents: [] },
        ],
      }),
    ).toThrow(/twice|duplicate/i);
  });
});

describe('reason codes', () => {
  it('every code has a status and a message, and codes are unique', () => {
    expect(new Set(REASON_CODES).size).toBe(REASON_CODES.length);
    for (const code of REASON_CODES) {
      expect(REASONS[code].status).toBeGreaterThanOrEqual(200);
      expect(REASONS[code].message.length).toBeGreaterThan(0);
    }
  });
});
