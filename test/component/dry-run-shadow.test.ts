/**
 * Dry-run (server flag, bundle setting, per route) and shadow evaluation
 * (@shadow policies, a shadow version) against the real server.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileBundle } from '../../src/bundle/active-bundle.js';
import { simpleRequestToCheckRequest } from '../../src/envoy/simple-request.js';
import type { WireCheckResponse } from '../../src/envoy/wire-types.js';
import { connectAuthz, denyBody, headerOf, type AuthzClient } from '../support/grpc-client.js';
import { eventually } from '../support/wait.js';
import { policyDir, removeDir } from '../support/policy-dir.js';
import { metricValue } from '../support/admin-http.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
const POLICIES = `
@id("reads") permit(principal, action in Action::"read", resource);
@id("frontend-writes") permit(principal == Workload::"${FRONTEND}", action in Action::"write", resource);
@id("no-delete") @status("405") @message("nothing is deleted") @retry_after("30")
forbid(principal, action == Action::"DELETE", resource);
`;
const SHADOW = `
// Candidate rule: block anonymous reads of /internal. Evaluated, never enforced.
@id("candidate-internal") @shadow
forbid(principal is Anonymous, action, resource) when { context.path like "/internal*" };
`;

const req = (o: {
  method?: string;
  path?: string;
  principal?: string;
  ext?: Record<string, string>;
  headers?: Record<string, string>;
}) =>
  simpleRequestToCheckRequest({
    method: o.method ?? 'GET',
    path: o.path ?? '/x',
    host: 'svc',
    principal: o.principal,
    contextExtensions: o.ext,
    headers: o.headers,
  });
const idOf = (res: WireCheckResponse) => res.dynamic_metadata!.fields!.decision_id.stringValue;

describe('dry-run', () => {
  let dir: string;
  let enforcing: TestServer;
  let dry: TestServer;
  let ec: AuthzClient;
  let dc: AuthzClient;

  beforeAll(async () => {
    dir = policyDir({ 'main.cedar': POLICIES });
    [enforcing, dry] = await Promise.all([
      startTestServer({ policies: dir }),
      startTestServer({ policies: dir, dryRun: true }),
    ]);
    ec = connectAuthz(enforcing.grpcPort);
    dc = connectAuthz(dry.grpcPort);
  });
  afterAll(async () => {
    ec?.close();
    dc?.close();
    await Promise.all([enforcing?.close(), dry?.close()]);
    removeDir(dir);
  });

  it('--dry-run: a deny is answered as an allow, with the verdict in a header for the upstream', async () => {
    const res = await dc.check(req({ method: 'DELETE', principal: FRONTEND }));
    expect(res.status.code).toBe(0);
    expect(headerOf(res, 'x-authz-dry-run-decision')).toBe('deny');
    expect(headerOf(res, 'retry-after')).toBeUndefined();
  });

  it('--dry-run: the decision log and metrics keep the real decision', async () => {
    const res = await dc.check(req({ method: 'POST' }));
    const line = dry.logLines().find((l) => l.decision_id === idOf(res))!;
    expect(line).toMatchObject({
      decision: 'deny',
      reason: 'no_permit',
      status: 403,
      enforcement: 'dry-run',
      answered: 'allow',
    });
    const text = await dry.metricsText();
    expect(metricValue(text, 'authz_decisions_total{decision="dry_run_allow",reason="no_permit"}')).toBe(1);
    expect(metricValue(text, 'authz_decisions_total{decision="deny",reason="no_permit"}')).toBe(0);
  });

  it('--dry-run: allows are untouched, and malformed requests are still 400', async () => {
    const ok = await dc.check(req({}));
    expect(ok.status.code).toBe(0);
    expect(headerOf(ok, 'x-authz-dry-run-decision')).toBeUndefined();
    expect((await dc.check({})).denied_response!.status.code).toBe(400);
  });

  it('a client cannot forge the dry-run marker: it is removed on a real allow', async () => {
    const res = await ec.check(req({ headers: { 'x-authz-dry-run-decision': 'deny', 'x-authz-fail-open': 'true' } }));
    expect(res.ok_response!.headers_to_remove).toEqual(['x-authz-dry-run-decision', 'x-authz-fail-open']);
  });

  it('per route: context_extensions enforcement=dry-run on an enforcing server', async () => {
    const res = await ec.check(req({ method: 'DELETE', principal: FRONTEND, ext: { enforcement: 'dry-run' } }));
    expect(res.status.code).toBe(0);
    expect(headerOf(res, 'x-authz-dry-run-decision')).toBe('deny');
    const other = await ec.check(req({ method: 'DELETE', principal: FRONTEND }));
    expect(other.denied_response!.status.code).toBe(405);
    expect(denyBody(other).message).toBe('nothing is deleted');
  });

  it('per route: enforcement=enforce keeps a route enforced on a --dry-run server', async () => {
    const res = await dc.check(req({ method: 'DELETE', principal: FRONTEND, ext: { enforcement: 'enforce' } }));
    expect(res.denied_response!.status.code).toBe(405);
  });

  it('bundle.yaml enforcement: dry-run switches a running fleet to dry-run and back', async () => {
    const del = () => ec.check(req({ method: 'DELETE', principal: FRONTEND }));
    writeFileSync(path.join(dir, 'bundle.yaml'), 'enforcement: dry-run\n');
    await eventually(async () => (await del()).status.code === 0, 10_000);
    expect(headerOf(await del(), 'x-authz-dry-run-decision')).toBe('deny');
    expect(JSON.parse((await enforcing.admin('/safety')).body)).toMatchObject({
      enforcement: 'dry-run',
      fail_mode: 'closed',
    });
    writeFileSync(path.join(dir, 'bundle.yaml'), 'enforcement: enforce\n');
    await eventually(async () => (await del()).status.code === 7, 10_000);
  });
});

describe('shadow evaluation', () => {
  let dir: string;
  let after: TestServer;
  let inline: TestServer;
  let ac: AuthzClient;
  let ic: AuthzClient;

  beforeAll(async () => {
    dir = policyDir({ 'main.cedar': POLICIES, 'candidate.cedar': SHADOW });
    [after, inline] = await Promise.all([
      startTestServer({ policies: dir }),
      startTestServer({ policies: dir, shadowEvaluation: 'inline' }),
    ]);
    ac = connectAuthz(after.grpcPort);
    ic = connectAuthz(inline.grpcPort);
  });
  afterAll(async () => {
    ac?.close();
    ic?.close();
    await Promise.all([after?.close(), inline?.close()]);
    removeDir(dir);
  });

  it('a @shadow policy is never enforced', async () => {
    expect((await ac.check(req({ path: '/internal/report' }))).status.code).toBe(0);
    expect((await ic.check(req({ path: '/internal/report' }))).status.code).toBe(0);
  });

  it('when it would flip the decision, the decision line says how and the mismatch is counted', async () => {
    const res = await ac.check(req({ path: '/internal/metrics' }));
    const line = await eventually(() => after.logLines().find((l) => l.decision_id === idOf(res)));
    const version = after.policySet.current!.version;
    expect(line).toMatchObject({
      decision: 'allow',
      policies: ['reads'],
      shadow: [{ source: 'policies', version, decision: 'deny', policies: ['candidate-internal'] }],
    });
    const sample = `authz_shadow_mismatches_total{source="policies",version="${version}"}`;
    await eventually(async () => metricValue(await after.metricsText(), sample) >= 2);
  });

  it('requests it would not change carry no shadow field and count as matches', async () => {
    const before = metricValue(
      await after.metricsText(),
      'authz_shadow_evaluations_total{source="policies",result="match"}',
    );
    const res = await ac.check(req({ path: '/public', principal: FRONTEND }));
    const line = await eventually(() => after.logLines().find((l) => l.decision_id === idOf(res)));
    expect(line.shadow).toBeUndefined();
    expect(
      metricValue(await after.metricsText(), 'authz_shadow_evaluations_total{source="policies",result="match"}'),
    ).toBe(before + 1);
  });

  it('inline: the line is written before the answer, shadow outcome included', async () => {
    const res = await ic.check(req({ path: '/internal/x' }));
    const line = inline.logLines().find((l) => l.decision_id === idOf(res))!;
    expect(line.shadow).toEqual([
      {
        source: 'policies',
        version: inline.policySet.current!.version,
        decision: 'deny',
        policies: ['candidate-internal'],
      },
    ]);
  });

  it('a shadow version is evaluated beside the active one, only the active one enforced', async () => {
    // The candidate version denies every write; the active one lets the frontend write.
    const candidate = compileBundle({
      version: 'v-candidate',
      policies: [
        { name: 'c.cedar', text: '@id("candidate-reads") permit(principal, action in Action::"read", resource);' },
      ],
    });
    after.shadowVersion.swap(candidate);
    const res = await ac.check(req({ method: 'POST', path: '/orders', principal: FRONTEND }));
    expect(res.status.code).toBe(0);
    const line = await eventually(() => after.logLines().find((l) => l.decision_id === idOf(res)));
    expect(line.shadow).toEqual([{ source: 'version', version: 'v-candidate', decision: 'deny', policies: [] }]);
    expect(
      metricValue(await after.metricsText(), 'authz_shadow_mismatches_total{source="version",version="v-candidate"}'),
    ).toBe(1);
    expect(JSON.parse((await after.admin('/safety')).body).shadow).toMatchObject({
      evaluation: 'after-reply',
      version: 'v-candidate',
      policies: ['candidate-internal'],
    });
    after.shadowVersion.clear();
  });
});
