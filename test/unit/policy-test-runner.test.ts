import { describe, expect, it } from 'vitest';
import { filesToPolicySetSource, type BundleFileMap } from '../../src/bundle/format/bundle-files.js';
import { formatTestReport, runBundleTests } from '../../src/build/policy-test-runner.js';
import { compileBundle } from '../../src/bundle/active-bundle.js';

const POLICIES =
  '@id("reads") permit (principal, action in Action::"read", resource);\n' +
  '@id("no-delete") @status("405") forbid (principal, action == Action::"DELETE", resource);\n';

function run(cases: unknown, extraFiles: Record<string, string> = {}) {
  const files: BundleFileMap = new Map([
    ['p.cedar', Buffer.from(POLICIES)],
    ['tests/a.json', Buffer.from(typeof cases === 'string' ? cases : JSON.stringify(cases))],
  ]);
  for (const [k, v] of Object.entries(extraFiles)) files.set(k, Buffer.from(v));
  const set = compileBundle(filesToPolicySetSource(files, 't'));
  return runBundleTests(files, set);
}

const GET = { method: 'GET', path: '/', host: 'svc' };
const DELETE = { method: 'DELETE', path: '/', host: 'svc' };

describe('bundle tests runner', () => {
  const rows: { name: string; case: Record<string, unknown>; pass: boolean; failure?: RegExp }[] = [
    { name: 'expected allow, got allow', case: { request: GET, decision: 'allow' }, pass: true },
    {
      name: 'expected policies and status match',
      case: { request: DELETE, decision: 'deny', status: 405, policies: ['no-delete'] },
      pass: true,
    },
    {
      name: 'a deny no policy made',
      case: { request: { ...GET, method: 'POST' }, decision: 'deny', status: 403, policies: [] },
      pass: true,
    },
    {
      name: 'wrong decision',
      case: { request: GET, decision: 'deny' },
      pass: false,
      failure: /expected deny; got allow \(allowed, HTTP 200, policies: reads\)/,
    },
    {
      name: 'wrong status',
      case: { request: DELETE, decision: 'deny', status: 403 },
      pass: false,
      failure: /expected HTTP 403; got deny \(policy_forbid, HTTP 405/,
    },
    {
      name: 'wrong policies',
      case: { request: GET, decision: 'allow', policies: ['other'] },
      pass: false,
      failure: /expected policies: other/,
    },
    {
      name: 'a misspelt request key',
      case: { request: { metod: 'GET' }, decision: 'allow' },
      pass: false,
      failure: /Unrecognized key: "metod"/,
    },
    {
      name: 'an unknown case key',
      case: { request: GET, decision: 'allow', stauts: 200 },
      pass: false,
      failure: /Unrecognized key: "stauts"/,
    },
    {
      name: 'a bad time',
      case: { request: { ...GET, time: 'yesterday' }, decision: 'allow' },
      pass: false,
      failure: /could not be evaluated: time "yesterday"/,
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const report = run([{ name: row.name, ...row.case }]);
      expect(report.cases).toHaveLength(1);
      expect(report.cases[0].pass).toBe(row.pass);
      expect(report.failed).toBe(row.pass ? 0 : 1);
      if (row.failure) expect(report.cases[0].failure).toMatch(row.failure);
    });
  }

  it('a test file that is not a list of cases fails the run', () => {
    const report = run('{"name": "not a list"}');
    expect(report.failed).toBe(1);
    expect(formatTestReport(report)).toMatch(/^ERROR tests\/a\.json: expected a JSON array of test cases/);
  });

  it('prints one PASS/FAIL line per case and the totals', () => {
    const report = run([
      { name: 'reads pass', request: GET, decision: 'allow' },
      { name: 'deletes fail', request: DELETE, decision: 'allow' },
    ]);
    const lines = formatTestReport(report).split('\n');
    expect(lines[0]).toMatch(/^PASS {2}tests\/a\.json: reads pass \(\d+\.\dms\)$/);
    expect(lines[1]).toMatch(/^FAIL {2}tests\/a\.json: deletes fail/);
    expect(lines.slice(-2)).toEqual(['PASS: 1/2', 'FAIL: 1/2']);
  });

  it('only tests/*.json files are test files', () => {
    const report = run([{ name: 'one', request: GET, decision: 'allow' }], {
      'cases.json': '[1, 2]',
      'tests/notes.txt': 'hi',
    });
    expect(report.cases.map((c) => c.name)).toEqual(['one']);
  });
});
