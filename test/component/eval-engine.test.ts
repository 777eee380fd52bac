/**
 * `authz eval` decides through the engine `--engine` names: the JS engine by
 * default, with no Cedar wasm evaluation of the policies (nothing preparsed,
 * nothing left to wasm), and the same answers line for line as `--engine wasm`
 * (decision, determining and erroring policies; each engine words its error messages).
 * Only Cedar's check of what the caller wrote stays a wasm call (request-check.ts).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fallbackCounts, resetFallbacks } from '../../src/cedar/js/fallback.js';
import { defaultEngine, setDefaultEngine } from '../../src/cedar/js/engine-choice.js';
import { psetIdStats } from '../../src/cedar/pset-ids.js';
import { runCli } from '../support/cli.js';
import { policyDir, removeDir } from '../support/policy-dir.js';

const POLICIES = `
@id("owners") permit(principal, action == Action::"edit", resource) when { resource.owner == principal };
@id("readers") permit(principal in Group::"staff", action == Action::"view", resource)
  unless { context has blocked && context.blocked };
@id("office") forbid(principal, action, resource)
  when { context has ip && !ip(context.ip).isInRange(ip("10.0.0.0/8")) };
@id("overflow") forbid(principal, action == Action::"edit", resource) when { context.n + 1 > 3 };
`;
const ENTITIES = [
  { uid: { type: 'User', id: 'ann' }, attrs: {}, parents: [{ type: 'Group', id: 'staff' }] },
  { uid: { type: 'User', id: 'bob' }, attrs: {}, parents: [] },
  { uid: { type: 'Doc', id: 'd1' }, attrs: { owner: { __entity: { type: 'User', id: 'ann' } } }, parents: [] },
];

const requests: object[] = [];
for (const who of ['ann', 'bob', 'eve'])
  for (const action of ['view', 'edit'])
    for (const context of [{}, { blocked: true }, { ip: '10.1.2.3' }, { ip: '192.168.0.1' }, { n: 5 }, { n: 1 }])
      requests.push({
        principal: { type: 'User', id: who },
        action: { type: 'Action', id: action },
        resource: { type: 'Doc', id: 'd1' },
        context,
      });

describe('authz eval --engine', () => {
  let dir: string;
  let lines: string;
  const engineBefore = defaultEngine();

  beforeAll(() => {
    dir = policyDir({ 'main.cedar': POLICIES });
    writeFileSync(path.join(dir, 'entities.json'), JSON.stringify(ENTITIES));
    lines = path.join(dir, 'requests.jsonl');
    writeFileSync(lines, requests.map((r) => JSON.stringify(r)).join('\n'));
  });
  afterAll(() => {
    setDefaultEngine(engineBefore);
    removeDir(dir);
  });

  const evalWith = async (engine?: string) => {
    const out = await runCli([
      'eval',
      '--policies',
      dir,
      '--requests',
      lines,
      '--cache-entries',
      '0',
      ...(engine ? ['--engine', engine] : []),
    ]);
    expect(out.code).toBe(0);
    return out.stdout.trim().split('\n');
  };

  it('the JS engine by default: every request decided with no policy preparsed in wasm, none left to wasm', async () => {
    resetFallbacks();
    const before = psetIdStats().created;
    const answers = await evalWith();
    expect(defaultEngine()).toBe('js');
    expect(answers).toHaveLength(requests.length);
    expect(psetIdStats().created).toBe(before);
    expect(Object.fromEntries(fallbackCounts())).toEqual({});
    // The cases above reach every outcome: allows, forbids, and errors.
    expect(answers.some((a) => JSON.parse(a).decision === 'allow')).toBe(true);
    expect(answers.some((a) => JSON.parse(a).determining.includes('office'))).toBe(true);
    expect(answers.some((a) => JSON.parse(a).errors.length > 0)).toBe(true);
  });

  it('--engine js and --engine wasm answer the same, line for line (error messages are worded by each engine)', async () => {
    const answer = (line: string) => {
      const a = JSON.parse(line) as { decision: string; determining: string[]; errors: { policy: string }[] };
      return { decision: a.decision, determining: a.determining, erroring: a.errors.map((e) => e.policy) };
    };
    const js = (await evalWith('js')).map(answer);
    const wasm = (await evalWith('wasm')).map(answer);
    expect(js).toEqual(wasm);
  });

  it('an unknown engine is one line naming the flag', async () => {
    const out = await runCli(['eval', '--policies', dir, '--requests', lines, '--engine', 'rust']);
    expect(out.code).toBe(2);
    expect(out.stderr).toBe('--engine must be one of js, wasm, got "rust"');
  });
});
