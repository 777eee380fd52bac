import { describe, expect, it } from 'vitest';
import { excerpt, jsonErrorNote, lineAndColumn, yamlPathNote } from '../../src/text/source-position.js';

const parseError = (text: string): Error => {
  try {
    JSON.parse(text);
  } catch (err) {
    return err as Error;
  }
  throw new Error('parsed');
};

describe('source positions', () => {
  it.each([
    { offset: 0, expected: { line: 1, column: 1 } },
    { offset: 3, expected: { line: 1, column: 4 } },
    { offset: 4, expected: { line: 2, column: 1 } },
    { offset: 6, expected: { line: 2, column: 3 } },
  ])('lineAndColumn("abc\\ndef", $offset)', ({ offset, expected }) =>
    expect(lineAndColumn('abc\ndef', offset)).toEqual(expected),
  );

  it('an excerpt is the line with carets under the span', () => {
    expect(excerpt('first\nwhen { @ };\n', 13, 14)).toBe('2 | when { @ };\n  |        ^');
  });

  it.each([
    {
      name: 'a position V8 names',
      text: '{\n  "a": 1,\n}\n',
      expected: 'f.json:3:1: not valid JSON: Expected double-quoted property name',
    },
    {
      name: 'an unexpected token V8 only quotes',
      text: '{\n  "method": "GET",\n  "path": /x\n}\n',
      expected: "f.json:3:11: not valid JSON: Unexpected token '/'",
    },
    {
      name: 'a cut-short document',
      text: '{"a": 1',
      expected: "f.json:1:8: not valid JSON: Expected ',' or '}' after property value",
    },
  ])('JSON errors at their place: $name', ({ text, expected }) => {
    const n = jsonErrorNote('f.json', text, parseError(text));
    expect(`${n.file}:${n.line}:${n.column}: ${n.message}`).toBe(expected);
  });

  it('a YAML path points at its value, or at its key when asked', () => {
    const text = 'a: 1\nrules:\n  - name: x\n    extra: 2\n';
    expect(yamlPathNote('b.yaml', text, ['rules', 0, 'name'], 'm')).toMatchObject({ line: 3, column: 11 });
    expect(yamlPathNote('b.yaml', text, ['rules', 0, 'extra'], 'm', 'key')).toMatchObject({ line: 4, column: 5 });
    expect(yamlPathNote('b.yaml', text, ['rules', 0, 'missing'], 'm')).toMatchObject({ line: 3, column: 5 });
  });
});
