/**
 * `@shadow` policies of a served bundle decided by the JS engine: the decision
 * line and the shadow metrics tell what they would change, the answers are
 * plain Cedar's on the enforced plus the shadow policies, and Cedar's wasm
 * preparses nothing for them (no whole-set preparse, no fallback).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideWithShadowPolicies } from '../../src/cedar/engine.js';
import { fallbackCounts } from '../../src/cedar/js/fallback.js';
import { psetIdStats } from '../../src/cedar/pset-ids.js';
import { simpleRequestToCheckRequest, type SimpleRequest } from '../../src/envoy/simple-request.js';
import type { WireCheckResponse } from '../../src/envoy/wire-types.js';
import { inputToEngineRequest } from '../../src/pipeline/cedar-request.js';
import { readCheckRequest } from '../../src/pipeline/authorize-input.js';
import { wholeContextReads } from '../../src/cedar/reads.js';
import { connectAuthz, type AuthzClient } from '../support/grpc-client.js';
import { metricValue } from '../support/admin-http.js';
import { allPolicyTextsOf, PlainCedar, mergeEntityLists } from '../support/plain-cedar.js';
import { policyDir, removeDir } from '../support/policy-dir.js';
import { startTestServer, type TestServer } from '../support/start-server.js';
import { eventually } from '../support/wait.js';

const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
const OTHER = 'spiffe://cluster.local/ns/shop/sa/other';
const ENFORCED = `
@id("reads") permit(principal, action in Action::"read", resource);
@id("frontend-writes") permit(principal == Workload::"${FRONTEND}", action in Action::"write", resource);
`;
// Candidates: they read what no enforced policy reads (the JSON body, a header), one errors on most requests.
const SHADOW = `
@id("big-orders") @shadow
forbid(principal, action == Action::"POST", resource) when { context has json && context.json has n && context.json.n > 100 };
@id("beta-header") @shadow
permit(principal, action == Action::"DELETE", resource) when { context.headers["x-beta"] == "1" };
@id("erroring") @shadow
forbid(principal, action, resource) when { context.headers["x-missing"] == "1" };
`;

const request = (o: Partial<SimpleRequest>): SimpleRequest => ({
  method: 'GET',
  path: '/x',
  host: 'orders',
  principal: FRONTEND,
  ...o,
});
const idOf = (res: WireCheckResponse) => res.dynamic_metadata!.fields!.decision_id.stringValue;

describe('@shadow policies decided by the JS engine in a served bundle', () => {
  let dir: string;
  let server: TestServer;
  let client: AuthzClient;
  let preparsedAtStart: number;

  beforeAll(async () => {
    dir = policyDir({ 'main.cedar': ENFORCED, 'candidates.cedar': SHADOW });
    server = await startTestServer({ policies: dir, shadowEvaluation: 'inline', bodyMaxBytes: 1024 });
    client = connectAuthz(server.grpcPort);
    preparsedAtStart = psetIdStats().created;
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
    removeDir(dir);
  });

  const shadowOf = async (r: SimpleRequest) => {
    const res = await client.check(simpleRequestToCheckRequest(r));
    const line = await eventually(() => server.logLines().find((l) => l.decision_id === idOf(res)));
    return { code: res.status.code, line };
  };

  it('is served by the JS engine', () => {
    expect(server.policySet.current!.policySet.engine).toBe('js');
    expect(server.policySet.current!.policySet.js!.unsupported.size).toBe(0);
  });

  it('a shadow forbid reading a body field no enforced policy reads: enforced allow, shadow deny, counted', async () => {
    const version = server.policySet.current!.version;
    const { code, line } = await shadowOf(
      request({ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n": 500}' }),
    );
    expect(code).toBe(0);
    expect(line).toMatchObject({
      decision: 'allow',
      policies: ['frontend-writes'],
      shadow: [{ source: 'policies', version, decision: 'deny', policies: ['big-orders'] }],
    });
    expect(
      metricValue(await server.metricsText(), `authz_shadow_mismatches_total{source="policies",version="${version}"}`),
    ).toBe(1);
  });

  it('a shadow permit that would allow what is denied today', async () => {
    const { code, line } = await shadowOf(request({ method: 'DELETE', principal: OTHER, headers: { 'x-beta': '1' } }));
    expect(code).toBe(7);
    expect(line).toMatchObject({
      decision: 'deny',
      shadow: [{ source: 'policies', decision: 'allow', policies: ['beta-header'] }],
    });
  });

  it('a request the shadow policies do not change carries no shadow field and counts as a match', async () => {
    const before = metricValue(
      await server.metricsText(),
      'authz_shadow_evaluations_total{source="policies",result="match"}',
    );
    const { code, line } = await shadowOf(
      request({ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n": 5}' }),
    );
    expect(code).toBe(0);
    expect(line.shadow).toBeUndefined();
    expect(
      metricValue(await server.metricsText(), 'authz_shadow_evaluations_total{source="policies",result="match"}'),
    ).toBe(before + 1);
  });

  it('answers as plain Cedar on the enforced and shadow policies, erroring policies included', () => {
    const bundle = server.policySet.current!;
    const set = bundle.policySet;
    const plain = new PlainCedar(allPolicyTextsOf(set), undefined, 'shadow-js-engine-reference');
    const rows: SimpleRequest[] = [
      request({ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n": 500}' }),
      request({ method: 'POST', headers: { 'content-type': 'application/json', 'x-missing': '1' }, body: '{"n":1}' }),
      request({ method: 'DELETE', principal: OTHER, headers: { 'x-beta': '1' } }),
      request({ method: 'DELETE', principal: OTHER }),
      request({ method: 'DELETE' }),
      request({ method: 'GET', headers: { 'x-missing': '1' } }),
    ];
    for (const r of rows) {
      const read = readCheckRequest(simpleRequestToCheckRequest(r), bundle);
      if (!read.ok) throw new Error(read.message);
      const req = inputToEngineRequest(read.input, bundle, undefined, undefined, wholeContextReads());
      const ours = decideWithShadowPolicies(set, req, { base: 'envoy' });
      const expected = plain.decide({
        ...req,
        entities: mergeEntityLists(set.envoyEntities.all(), req.entities ?? []),
      });
      expect({
        decision: ours.decision,
        determining: ours.determining,
        erroring: [...new Set(ours.errors.map((e) => e.policyId))].sort(),
      }).toEqual({ decision: expected.decision, determining: expected.determining, erroring: expected.erroring });
    }
  });

  it('Cedar wasm preparsed nothing for them: no whole-set preparse, no fallback', () => {
    expect(psetIdStats().created).toBe(preparsedAtStart);
    expect(Object.fromEntries(fallbackCounts())).toEqual({});
  });
});
