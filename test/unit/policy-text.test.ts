import { describe, expect, it } from 'vitest';
import { groupStatements, splitStatements } from '../../src/cedar/policy-text.js';

describe('splitStatements', () => {
  const rows = [
    {
      name: 'two policies',
      text: 'permit(principal, action, resource);\nforbid(principal, action, resource);',
      expected: ['permit(principal, action, resource);', '\nforbid(principal, action, resource);'],
    },
    {
      name: 'a semicolon in a string',
      text: 'permit(principal, action, resource) when { context.path == "a;b" };',
      expected: ['permit(principal, action, resource) when { context.path == "a;b" };'],
    },
    {
      name: 'an escaped quote in a string',
      text: 'permit(principal, action, resource) when { context.path == "a\\";b" };x;',
      expected: ['permit(principal, action, resource) when { context.path == "a\\";b" };', 'x;'],
    },
    {
      name: 'a semicolon in a comment',
      text: '// a; b\npermit(principal, action, resource);',
      expected: ['// a; b\npermit(principal, action, resource);'],
    },
    {
      name: 'trailing comments join the last statement',
      text: 'permit(principal, action, resource);\n// end\n',
      expected: ['permit(principal, action, resource);\n// end\n'],
    },
    {
      name: 'an unterminated tail is kept for Cedar to judge',
      text: 'permit(principal, action, resource);\npermit(',
      expected: ['permit(principal, action, resource);', '\npermit('],
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      expect(splitStatements(row.text)).toEqual(row.expected);
      expect(splitStatements(row.text).join('')).toBe(row.text);
    });
  }
});

describe('groupStatements', () => {
  it('packs statements up to a size, never splitting one', () => {
    expect(groupStatements(['aaaa', 'bb', 'cccccc', 'd'], 6)).toEqual(['aaaabb', 'cccccc', 'd']);
  });
});
