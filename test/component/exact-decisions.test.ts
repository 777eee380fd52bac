/**
 * The six cases of issue 10, verbatim: each answered allow where plain Cedar
 * answers deny (or crashed). Each is decided through `authz check`, `authz
 * eval` and the running server with the decision cache on and off, and
 * compared with plain Cedar on the whole input.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { authorizeCheckRequest } from '../../src/pipeline/authorize-input.js';
import { compilePolicyDirectory } from '../../src/bundle/format/compile-policy-directory.js';
import { EngineResultCache } from '../../src/cache/decision-cache.js';
import { parseSpiffeId } from '../../src/context/principal.js';
import { decide } from '../../src/cedar/engine.js';
import type { EngineResult } from '../../src/cedar/evaluate.js';
import { simpleRequestToCheckRequest } from '../../src/envoy/simple-request.js';
import { runCli } from '../support/cli.js';
import { connectAuthz } from '../support/grpc-client.js';
import { policyDir, removeDir } from '../support/policy-dir.js';
import { FRONTEND, istioRequest } from '../support/requests.js';
import { startTestServer } from '../support/start-server.js';
import { plainIsAuthorized, type PlainRequest } from '../support/plain-cedar.js';

const PERMIT_ALL = 'permit(principal, action, resource);';
const workload = (attrs: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  uid: { type: 'Workload', id: FRONTEND },
  attrs,
  parents: [],
  ...extra,
});
const orders = (attrs: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  uid: { type: 'Service', id: 'orders' },
  attrs,
  parents: [],
  ...extra,
});

interface Case {
  name: string;
  files: Record<string, string>;
  /** What plain Cedar answers for GET / on orders from the frontend. */
  expected: 'allow' | 'deny';
}

const CASES: Case[] = [
  {
    name: '1. entity tags are dropped: principal.hasTag',
    files: {
      'p.cedar': `${PERMIT_ALL}\nforbid(principal, action, resource) when { principal.hasTag("quarantined") };`,
      'entities.json': JSON.stringify([workload({}, { tags: { quarantined: true } })]),
    },
    expected: 'deny',
  },
  {
    name: '1. entity tags are dropped: resource.hasTag on Service::"orders"',
    files: {
      'p.cedar': `${PERMIT_ALL}\nforbid(principal, action, resource) when { resource.hasTag("frozen") };`,
      'entities.json': JSON.stringify([orders({}, { tags: { frozen: true } })]),
    },
    expected: 'deny',
  },
  {
    name: '1. entity tags are dropped: getTag',
    files: {
      'p.cedar': `${PERMIT_ALL}\nforbid(principal, action, resource) when { principal.getTag("quarantined") };`,
      'entities.json': JSON.stringify([workload({}, { tags: { quarantined: true } })]),
    },
    expected: 'deny',
  },
  {
    name: '2. entities named only by a literal are not sent',
    files: {
      'p.cedar': `${PERMIT_ALL}\nforbid(principal, action, resource) when { Flags::"global".lockdown };`,
      'entities.json': JSON.stringify([
        { uid: { type: 'Flags', id: 'global' }, attrs: { lockdown: true }, parents: [] },
      ]),
    },
    expected: 'deny',
  },
  {
    name: '3. action hierarchies deeper than one level are cut',
    files: {
      'p.cedar': `${PERMIT_ALL}\nforbid(principal, action in Action::"any-method", resource);`,
      'entities.json': JSON.stringify([
        { uid: { type: 'Action', id: 'GET' }, attrs: {}, parents: [{ type: 'Action', id: 'safe-methods' }] },
        { uid: { type: 'Action', id: 'safe-methods' }, attrs: {}, parents: [{ type: 'Action', id: 'any-method' }] },
        { uid: { type: 'Action', id: 'any-method' }, attrs: {}, parents: [] },
      ]),
    },
    expected: 'deny',
  },
  {
    name: '4. schema-typed entity references are read as records',
    files: {
      'schema.cedarschema': [
        'entity Team { frozen: Bool };',
        'entity Workload;',
        'entity Service { owner: Team };',
        'action "GET" appliesTo { principal: [Workload], resource: [Service] };',
      ].join('\n'),
      'p.cedar': `${PERMIT_ALL}\nforbid(principal, action, resource) when { resource.owner.frozen };`,
      'entities.json': JSON.stringify([
        { uid: { type: 'Team', id: 'payments' }, attrs: { frozen: true }, parents: [] },
        orders({ owner: { type: 'Team', id: 'payments' } }),
      ]),
    },
    expected: 'deny',
  },
  {
    name: '6. authz check (text mode) on a directory holding only permit-all',
    files: { 'p.cedar': PERMIT_ALL },
    expected: 'allow',
  },
];

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

function dirOf(c: Case): string {
  const dir = policyDir(c.files);
  dirs.push(dir);
  return dir;
}

/** Plain Cedar on the whole input of `GET /` to orders from the frontend, as the Envoy mapping builds it. */
async function plainAnswer(c: Case, dir: string) {
  const bundle = await compilePolicyDirectory(dir);
  const set = bundle.policySet;
  const auth = authorizeCheckRequest(
    simpleRequestToCheckRequest({ method: 'GET', path: '/', host: 'orders', principal: FRONTEND }),
    bundle,
  );
  const policies: Record<string, string> = {};
  for (const p of set.policies.values()) policies[p.id] = p.text;
  const bundleEntities = c.files['entities.json']
    ? (JSON.parse(c.files['entities.json']) as PlainRequest['entities'])
    : [];
  // With a schema, plain Cedar also reads the context and the principal's attributes against it, which the
  // Envoy mapping's fields are not declared in; these policies read neither, so the reference leaves them out.
  const schema = c.files['schema.cedarschema'];
  const principal = workload(schema ? {} : parseSpiffeId(FRONTEND));
  const merged = bundleEntities.some((e) => JSON.stringify(e.uid) === JSON.stringify(principal.uid))
    ? bundleEntities.map((e) =>
        JSON.stringify(e.uid) === JSON.stringify(principal.uid)
          ? ({ ...e, attrs: { ...e.attrs, ...principal.attrs } } as PlainRequest['entities'][number])
          : e,
      )
    : [...bundleEntities, principal as PlainRequest['entities'][number]];
  const answer = plainIsAuthorized(
    policies,
    {
      principal: principal.uid,
      action: { type: 'Action', id: 'GET' },
      resource: { type: 'Service', id: 'orders' },
      context: schema ? {} : auth.context!,
      entities: merged,
    },
    schema,
  );
  set.retire();
  return answer;
}

describe('the six cases answer as plain Cedar does', () => {
  for (const c of CASES) {
    it(`${c.name}: authz check, authz eval and plain Cedar agree`, async () => {
      const dir = dirOf(c);
      const plain = await plainAnswer(c, dir);
      expect(plain.failure).toBeUndefined();
      expect(plain.decision).toBe(c.expected);

      const check = await runCli([
        'check',
        '--policies',
        dir,
        '--method',
        'GET',
        '--path',
        '/',
        '--host',
        'orders',
        '--principal',
        FRONTEND,
      ]);
      expect(check.stderr).toBe('');
      expect(check.stdout).toMatch(new RegExp(`^decision: +${c.expected.toUpperCase()} `));
      expect(check.code).toBe(c.expected === 'allow' ? 0 : 1);

      const requestFile = path.join(dir, 'request.json');
      writeFileSync(
        requestFile,
        JSON.stringify({
          principal: { type: 'Workload', id: FRONTEND },
          action: { type: 'Action', id: 'GET' },
          resource: { type: 'Service', id: 'orders' },
          context: {},
        }),
      );
      const evaluated = await runCli(['eval', '--policies', dir, '--request', requestFile]);
      expect(JSON.parse(evaluated.stdout)).toMatchObject({ decision: c.expected });
    });
  }

  for (const cacheEntries of [0, 1000]) {
    it(`the running server agrees (decision cache ${cacheEntries ? 'on' : 'off'}), on a first and a repeated check`, async () => {
      for (const c of CASES) {
        const dir = dirOf(c);
        const server = await startTestServer({ policies: dir, decisionCacheEntries: cacheEntries });
        const client = connectAuthz(server.grpcPort);
        try {
          for (let i = 0; i < 2; i++) {
            const res = await client.check(
              istioRequest({ principal: FRONTEND, method: 'GET', path: '/', host: 'orders' }),
            );
            expect(res.status.code === 0 ? 'allow' : 'deny', `${c.name}, check ${i + 1}`).toBe(c.expected);
          }
        } finally {
          client.close();
          await server.close();
        }
      }
    });
  }
});

describe('5. the decision cache key has the resource type', () => {
  it('Public::"x" and Secret::"x" never share an entry (engine, and authz eval --requests)', async () => {
    const dir = policyDir({ 'p.cedar': 'permit(principal, action, resource is Public);' });
    dirs.push(dir);
    const set = (await compilePolicyDirectory(dir)).policySet;
    const cache = new EngineResultCache<EngineResult>(100, 60_000);
    const req = (type: string) => ({
      principal: { type: 'User', id: 'u' },
      action: { type: 'Action', id: 'view' },
      resource: { type, id: 'x' },
      context: {},
    });
    expect(decide(set, req('Public'), { cache }).result.decision).toBe('allow');
    expect(decide(set, req('Secret'), { cache }).result.decision).toBe('deny');
    expect(decide(set, req('Public'), { cache })).toMatchObject({ cache: 'hit', result: { decision: 'allow' } });
    set.retire();

    const lines = path.join(dir, 'requests.jsonl');
    writeFileSync(
      lines,
      [req('Public'), req('Secret'), req('Public'), req('Secret')].map((r) => JSON.stringify(r)).join('\n'),
    );
    const out = await runCli(['eval', '--policies', dir, '--requests', lines]);
    expect(
      out.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).decision),
    ).toEqual(['allow', 'deny', 'allow', 'deny']);
    expect(
      plainIsAuthorized({ p: 'permit(principal, action, resource is Public);' }, { ...req('Secret'), entities: [] })
        .decision,
    ).toBe('deny');
  });
});
