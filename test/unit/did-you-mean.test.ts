import { describe, expect, it } from 'vitest';
import { closestName, didYouMean, editDistance } from '../../src/text/did-you-mean.js';

describe('did you mean', () => {
  it.each([
    { a: 'orders', b: 'orders', expected: 0 },
    { a: 'ordres', b: 'orders', expected: 1 },
    { a: 'polices', b: 'policies', expected: 1 },
    { a: 'kitten', b: 'sitting', expected: 3 },
  ])('editDistance($a, $b) = $expected', ({ a, b, expected }) => expect(editDistance(a, b)).toBe(expected));

  it.each([
    { name: 'a swapped pair', input: 'ordres', candidates: ['orders', 'payments'], expected: 'orders' },
    { name: 'another case', input: 'anonymous', candidates: ['Workload', 'User', 'Anonymous'], expected: 'Anonymous' },
    { name: 'a cut-short name', input: 'Anon', candidates: ['Workload', 'User', 'Anonymous'], expected: 'Anonymous' },
    {
      name: 'a missing letter in a flag',
      input: '--polices',
      candidates: ['--policies', '--listen'],
      expected: '--policies',
    },
    { name: 'nothing close', input: 'frobnicate', candidates: ['serve', 'check'], expected: undefined },
    { name: 'two letters are too short to guess from', input: 'us', candidates: ['User'], expected: undefined },
    { name: 'the name itself is not a suggestion', input: 'serve', candidates: ['serve'], expected: undefined },
  ])('$name', ({ input, candidates, expected }) => expect(closestName(input, candidates)).toBe(expected));

  it('says it as the end of a sentence', () => {
    expect(didYouMean('ordres', ['orders'])).toBe('; did you mean "orders"?');
    expect(didYouMean('--polices', ['--policies'], (f) => f)).toBe('; did you mean --policies?');
    expect(didYouMean('zzz', ['orders'])).toBe('');
  });
});
