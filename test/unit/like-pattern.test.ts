/** Our `like` matcher (used for cache keys) against Cedar's own answers. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cedar, type PolicyJson } from '../../src/cedar/cedar-wasm.js';
import { compileLike, likeMatches, type PatternElem } from '../../src/cedar/like-pattern.js';

const ALPHABET = ['a', 'b', '/', '*', '\\', 'é', '😀', ' '];
const char = fc.constantFrom(...ALPHABET);
const elem = fc.oneof(
  fc.constant('Wildcard' as const),
  char.map((c) => ({ Literal: c })),
);

/** The pattern as Cedar source: literal `*` and `\` escaped. */
function patternText(elems: PatternElem[]): string {
  return elems
    .map((e) => (e === 'Wildcard' ? '*' : e.Literal === '*' ? '\\*' : e.Literal === '\\' ? '\\\\' : e.Literal))
    .join('');
}

function cedarSays(elems: PatternElem[], s: string): { matches: boolean; parsed: PatternElem[] } {
  const text = `permit (principal, action, resource) when { context.s like "${patternText(elems)}" };`;
  const json = cedar.policyToJson(text);
  if (json.type !== 'success') throw new Error(JSON.stringify(json.errors));
  const parsed = (json.json as PolicyJson & { conditions: { body: { like: { pattern: PatternElem[] } } }[] })
    .conditions[0].body.like.pattern;
  const answer = cedar.isAuthorized({
    principal: { type: 'P', id: 'p' },
    action: { type: 'Action', id: 'a' },
    resource: { type: 'R', id: 'r' },
    context: { s },
    entities: [],
    policies: { staticPolicies: text },
  });
  if (answer.type !== 'success') throw new Error(JSON.stringify(answer.errors));
  return { matches: answer.response.decision === 'allow', parsed };
}

describe('likeMatches', () => {
  const rows = [
    { pattern: '/api/*', s: '/api/items/1', expected: true },
    { pattern: '/api/*', s: '/api', expected: false },
    { pattern: '*', s: '', expected: true },
    { pattern: 'a*a', s: 'a', expected: false },
    { pattern: 'a*a', s: 'aa', expected: true },
    { pattern: '*b*b*', s: 'abab', expected: true },
    { pattern: '/payments/*/status', s: '/payments/7/status', expected: true },
    { pattern: '/payments/*/status', s: '/payments/7/status/x', expected: false },
  ];
  for (const row of rows) {
    it(`"${row.s}" like "${row.pattern}" is ${row.expected}`, () => {
      const elems: PatternElem[] = [...row.pattern].map((c) => (c === '*' ? 'Wildcard' : { Literal: c }));
      expect(likeMatches(compileLike(elems), row.s)).toBe(row.expected);
    });
  }

  it('agrees with Cedar on random patterns and strings', () => {
    fc.assert(
      fc.property(
        fc.array(elem, { maxLength: 6 }),
        fc.array(char, { maxLength: 8 }).map((cs) => cs.join('')),
        (elems, s) => {
          const { matches, parsed } = cedarSays(elems, s);
          expect(likeMatches(compileLike(parsed), s)).toBe(matches);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('stays fast on a hostile string', () => {
    const p = compileLike(
      [...'*a*a*a*a*a*a*a*a*a*a*b'].map((c): PatternElem => (c === '*' ? 'Wildcard' : { Literal: c })),
    );
    // Exponential backtracking would not finish; this returns at once.
    expect(likeMatches(p, 'a'.repeat(100_000))).toBe(false);
  });
});
