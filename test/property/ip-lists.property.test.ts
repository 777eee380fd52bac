/**
 * The prefix trie against the definition: an address is in a list exactly
 * when some entry of the list is a prefix of it, checked bit by bit.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IpListIndex } from '../../src/context/ip-lists.js';

function toBits(words: number[]): string {
  return words.map((w) => (w >>> 0).toString(2).padStart(32, '0')).join('');
}

function v4Text(w: number): string {
  return [24, 16, 8, 0].map((s) => (w >>> s) & 0xff).join('.');
}

function v6Text(words: number[]): string {
  const groups: string[] = [];
  for (const w of words) groups.push(((w >>> 16) & 0xffff).toString(16), (w & 0xffff).toString(16));
  return groups.join(':');
}

function masked(words: number[], length: number): number[] {
  return words.map((w, i) => {
    const keep = length - i * 32;
    if (keep >= 32) return w >>> 0;
    if (keep <= 0) return 0;
    return (w & (0xffffffff << (32 - keep))) >>> 0;
  });
}

/** Addresses clustered in a few /8s (v4) or /16s (v6), so prefixes and addresses actually overlap. */
const v4Word = fc
  .tuple(fc.constantFrom(10, 172, 192), fc.integer({ min: 0, max: 0xffffff }))
  .map(([hi, lo]) => ((hi << 24) | lo) >>> 0);
const v6Words = fc
  .tuple(
    fc.constantFrom(0x20010db8, 0xfd000000),
    fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 3, maxLength: 3 }),
  )
  .map(([hi, rest]) => [hi >>> 0, ...rest.map((x) => x >>> 0)]);

const entry = fc.oneof(
  fc.record({
    family: fc.constant(4 as const),
    words: v4Word.map((w) => [w]),
    length: fc.integer({ min: 0, max: 32 }),
  }),
  fc.record({ family: fc.constant(6 as const), words: v6Words, length: fc.integer({ min: 0, max: 128 }) }),
);

const address = fc.oneof(
  v4Word.map((w) => ({ family: 4 as const, words: [w] })),
  v6Words.map((words) => ({ family: 6 as const, words })),
);

describe('IpListIndex matches exactly the lists with a covering prefix', () => {
  it('agrees with a linear scan for random lists and addresses', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(entry, { maxLength: 12 }), { minLength: 1, maxLength: 4 }),
        fc.array(address, { minLength: 1, maxLength: 20 }),
        (lists, addrs) => {
          const files = lists.map((entries, i) => ({
            name: `list${i}`,
            text: entries
              .map((e) => {
                const m = masked(e.words, e.length);
                return `${e.family === 4 ? v4Text(m[0]) : v6Text(m)}/${e.length}`;
              })
              .join('\n'),
          }));
          const index = IpListIndex.compile(files);
          for (const a of addrs) {
            const bits = toBits(a.words);
            const expected = lists
              .map((entries, i) => ({
                name: `list${i}`,
                hit: entries.some(
                  (e) => e.family === a.family && bits.startsWith(toBits(masked(e.words, e.length)).slice(0, e.length)),
                ),
              }))
              .filter((x) => x.hit)
              .map((x) => x.name);
            const text = a.family === 4 ? v4Text(a.words[0]) : v6Text(a.words);
            expect(index.match(text)).toEqual(expected);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
