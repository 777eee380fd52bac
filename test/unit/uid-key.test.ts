/** uidKey's shortcut (no JSON.stringify when nothing needs escaping) gives exactly JSON.stringify's text. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { uidKey } from '../../src/cedar/entity-store.js';

describe('uidKey', () => {
  it('is `<type>::` and the id as JSON.stringify writes it, for any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string(), (id, type) => {
        expect(uidKey(type, id)).toBe(`${type}::${JSON.stringify(id)}`);
      }),
      { numRuns: 20_000 },
    );
  });

  it('escapes what JSON.stringify escapes, and only that', () => {
    for (const id of [
      'a"b',
      'a\\b',
      '\n',
      '\u0000',
      '\u001f',
      '\u007f',
      '\ud800',
      '\udfff',
      '😀',
      '\u2028',
      'é',
      '',
      'spiffe://td/ns/a/sa/b',
    ])
      expect(uidKey('T', id)).toBe(`T::${JSON.stringify(id)}`);
  });
});
