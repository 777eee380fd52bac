import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load-config.js';
import { parseDurationMs } from '../../src/config/duration.js';

describe('loadConfig', () => {
  it('has documented defaults', () => {
    const c = loadConfig({ env: {} });
    expect(c.listen).toEqual({ host: '0.0.0.0', port: 9191 });
    expect(c.admin).toEqual({ host: '127.0.0.1', port: 9192 });
    expect(c.policies).toBe('policies');
    expect(c.policiesSettle).toBe(200);
    expect([c.bodyMaxBytes, c.jsonMaxDepth, c.jsonMaxKeys]).toEqual([65536, 32, 1000]);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('flags beat environment, which beats the file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cfg-'));
    const file = path.join(dir, 'authz.yaml');
    writeFileSync(file, 'listen: 127.0.0.1:1000\nadmin: 127.0.0.1:2000\npolicies: /from/file\n');
    const c = loadConfig({
      file,
      env: { AUTHZ_ADMIN: '127.0.0.1:2001', AUTHZ_POLICIES: '/from/env' },
      flags: { policies: '/from/flag' },
    });
    expect(c.listen.port).toBe(1000);
    expect(c.admin.port).toBe(2001);
    expect(c.policies).toBe('/from/flag');
  });

  const bad = [
    {
      name: 'bad listen from a flag',
      src: { flags: { listen: 'nope' }, env: {} },
      error: /listen: expected HOST:PORT.*\(from --listen\)/,
    },
    {
      name: 'port out of range from env',
      src: { env: { AUTHZ_ADMIN: '0.0.0.0:70000' } },
      error: /admin: .*\(from environment AUTHZ_ADMIN\)/,
    },
    { name: 'unknown log level', src: { flags: { logLevel: 'loud' }, env: {} }, error: /logLevel/ },
    { name: 'bad boolean', src: { env: { AUTHZ_DECISION_LOG_HEADERS: 'maybe' } }, error: /decisionLogHeaders/ },
    {
      name: 'a settle time that is not a duration',
      src: { flags: { policiesSettle: 'soon' }, env: {} },
      error: /policiesSettle: expected a duration.*\(from --policies-settle\)/,
    },
    {
      name: 'a zero body limit',
      src: { env: { AUTHZ_BODY_MAX_BYTES: '0' } },
      error:
        /bodyMaxBytes: expected a whole number from 1 to 16777216, got "0" \(from environment AUTHZ_BODY_MAX_BYTES\)/,
    },
    {
      name: 'a JSON depth that is not a number',
      src: { env: { AUTHZ_JSON_MAX_DEPTH: 'deep' } },
      error: /jsonMaxDepth: expected a whole number/,
    },
    {
      name: 'a settle time over a minute',
      src: { env: { AUTHZ_POLICIES_SETTLE: '2m' } },
      error: /policiesSettle: must be at most 60s \(from environment AUTHZ_POLICIES_SETTLE\)/,
    },
  ];
  for (const row of bad) {
    it(`refuses ${row.name}, naming the field`, () => {
      expect(() => loadConfig(row.src)).toThrow(ConfigError);
      expect(() => loadConfig(row.src)).toThrow(row.error);
    });
  }

  it('refuses unknown keys in the config file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cfg-'));
    const file = path.join(dir, 'authz.yaml');
    writeFileSync(file, 'listne: 127.0.0.1:1000\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(/unknown setting.*"listne"/);
  });
});

describe('parseDurationMs', () => {
  const rows: [string, number | undefined][] = [
    ['250ms', 250],
    ['2s', 2000],
    ['1.5s', 1500],
    ['1m', 60000],
    ['100', 100],
    ['fast', undefined],
    ['-1s', undefined],
  ];
  for (const [s, ms] of rows) it(s, () => expect(parseDurationMs(s)).toBe(ms));
});

describe('config mistakes point at the place', () => {
  const file = (text: string): string => {
    const dir = mkdtempSync(path.join(tmpdir(), 'authz-config-'));
    writeFileSync(path.join(dir, 'authz.yaml'), text);
    return path.join(dir, 'authz.yaml');
  };
  const refusal = (sources: Parameters<typeof loadConfig>[0]): string => {
    try {
      loadConfig(sources);
    } catch (err) {
      return (err as Error).message;
    }
    return '(accepted)';
  };

  it.each([
    {
      name: 'a duration without a unit, from a flag',
      flags: { pollInterval: '5' },
      expected: 'pollInterval: 5 has no unit; write 5s or 5000ms (from --poll-interval)',
    },
    {
      name: 'a duration without a unit, as a YAML number',
      text: 'decisionTimeout: 50\n',
      expected: 'authz.yaml:1:18: decisionTimeout: 50 has no unit; write 50s or 50000ms',
    },
    {
      name: 'a misspelt setting',
      text: 'listen: 0.0.0.0:9191\npolices: x\n',
      expected: 'authz.yaml:2:1: unknown setting "polices"; did you mean "policies"?',
    },
    { name: 'a bad value in the file', text: '# authz\nfailMode: clsoed\n', expected: 'authz.yaml:2:11: failMode: ' },
    { name: 'YAML that does not parse', text: 'listen: [\n', expected: 'authz.yaml:2:1: not valid YAML: ' },
  ])('$name', ({ flags, text, expected }) => {
    const f = text === undefined ? undefined : file(text);
    const message = refusal({ flags, file: f, env: {} });
    expect(message.replace(f ? path.dirname(f) + '/' : '\0', '')).toContain(expected);
  });

  it('a zero duration needs no unit', () => {
    expect(loadConfig({ flags: { decisionTimeout: '0' }, env: {} }).decisionTimeout).toBe(0);
  });
});
