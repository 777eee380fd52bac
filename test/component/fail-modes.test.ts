/**
 * Fail modes against the real server, for each trigger (no policy set yet,
 * evaluation throwing, deadline passed), per route through
 * context_extensions["fail_mode"] and server-wide through --fail-mode.
 */
import { compilePolicyDirectory } from '../../src/bundle/format/compile-policy-directory.js';
import { DEFAULT_LOG_MAX_STRING } from '../../src/observability/decision-log.js';
import { cutString } from '../../src/observability/redaction.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActiveBundle } from '../../src/bundle/active-bundle.js';
import { simpleRequestToCheckRequest } from '../../src/envoy/simple-request.js';
import type { WireCheckResponse } from '../../src/envoy/wire-types.js';
import { connectAuthz, denyBody, headerOf, type AuthzClient } from '../support/grpc-client.js';
import { eventually } from '../support/wait.js';
import { policyDir, removeDir } from '../support/policy-dir.js';
import { metricValue } from '../support/admin-http.js';
import { startTestServer, type TestServer } from '../support/start-server.js';

const ALLOW_READS = '@id("reads") permit(principal, action in Action::"read", resource);';
const OPEN = { fail_mode: 'open' };
const CLOSED = { fail_mode: 'closed' };

const read = (ext: Record<string, string> = {}, path = '/x') =>
  simpleRequestToCheckRequest({ method: 'GET', path, host: 'svc', contextExtensions: ext });
const decisionId = (res: WireCheckResponse) => res.dynamic_metadata!.fields!.decision_id.stringValue;

function expectFailClosed(res: WireCheckResponse, why: RegExp): void {
  expect(res.status.code).toBe(7);
  expect(res.denied_response!.status.code).toBe(503);
  expect(denyBody(res).message).toMatch(why);
  expect(denyBody(res).message).toMatch(/failing closed$/);
}

function expectFailOpen(res: WireCheckResponse): void {
  expect(res.status.code).toBe(0);
  expect(headerOf(res, 'x-authz-fail-open')).toBe('true');
}

describe('no policy set is active yet', () => {
  let closed: TestServer;
  let open: TestServer;
  let cc: AuthzClient;
  let oc: AuthzClient;
  let dir: string;

  beforeAll(async () => {
    dir = policyDir({ 'broken.cedar': 'permit(principal, action resource);' });
    [closed, open] = await Promise.all([
      startTestServer({ policies: dir }),
      startTestServer({ policies: dir, failMode: 'open' }),
    ]);
    cc = connectAuthz(closed.grpcPort);
    oc = connectAuthz(open.grpcPort);
  });
  afterAll(async () => {
    cc?.close();
    oc?.close();
    await Promise.all([closed?.close(), open?.close()]);
    removeDir(dir);
  });

  it('the server still answers, and is not ready, whatever its fail mode', async () => {
    for (const [s, c] of [
      [closed, cc],
      [open, oc],
    ] as const) {
      expect(await c.health('')).toBe('NOT_SERVING');
      expect((await s.admin('/readyz')).status).toBe(503);
    }
  });

  it('closed by default: 503 with a body that says why', async () => {
    expectFailClosed(await cc.check(read()), /^no policy set is active yet/);
  });

  it('a route with fail_mode=open is let through, marked for the upstream', async () => {
    expectFailOpen(await cc.check(read(OPEN)));
  });

  it('--fail-mode open lets routes through, except one that says fail_mode=closed', async () => {
    expectFailOpen(await oc.check(read()));
    expectFailClosed(await oc.check(read(CLOSED)), /^no policy set is active yet/);
  });

  it('a misspelt fail_mode fails closed even on a fail-open server, and the log says why', async () => {
    const res = await oc.check(read({ fail_mode: 'opne' }));
    expectFailClosed(res, /no policy set/);
    const line = open.logLines().find((l) => l.decision_id === decisionId(res))!;
    expect(line.route_warning).toBe('context_extensions["fail_mode"]="opne" is not open or closed; failing closed');
  });

  it('is counted as decision="fail_open" or reason="fail_closed" and logged with its cause', async () => {
    const text = await closed.metricsText();
    expect(metricValue(text, 'authz_decisions_total{decision="deny",reason="fail_closed"}')).toBeGreaterThanOrEqual(1);
    expect(
      metricValue(text, 'authz_decisions_total{decision="fail_open",reason="no_policy_set"}'),
    ).toBeGreaterThanOrEqual(1);
    const res = await cc.check(read(OPEN));
    const line = closed.logLines().find((l) => l.decision_id === decisionId(res))!;
    expect(line).toMatchObject({
      decision: 'fail_open',
      reason: 'no_policy_set',
      fail_cause: 'no_policy_set',
      fail_mode: 'open',
      version: null,
    });
  });
});

describe('evaluation throws', () => {
  let server: TestServer;
  let client: AuthzClient;
  let dir: string;
  let good: ActiveBundle;

  beforeAll(async () => {
    dir = policyDir({ 'main.cedar': ALLOW_READS });
    server = await startTestServer({ policies: dir });
    client = connectAuthz(server.grpcPort);
    good = server.policySet.current!;
    // The engine loses the set it was given (its preparsed slices freed, as if Cedar's store were reset): every evaluation now fails for real.
    good.policySet.retire();
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
    removeDir(dir);
  });

  it('closed by default, with the engine error in the body', async () => {
    expectFailClosed(await client.check(read()), /^policy evaluation failed: this policy set was replaced/);
  });

  it('per route: fail_mode=open lets it through', async () => {
    const res = await client.check(read(OPEN));
    expectFailOpen(res);
    const line = server.logLines().find((l) => l.decision_id === decisionId(res))!;
    expect(line).toMatchObject({ decision: 'fail_open', reason: 'evaluation_error', fail_cause: 'evaluation_error' });
    expect(
      metricValue(await server.metricsText(), 'authz_decisions_total{decision="fail_open",reason="evaluation_error"}'),
    ).toBe(1);
  });

  it('a malformed request is still a 400, not a fail-mode answer', async () => {
    const res = await client.check({ attributes: { context_extensions: OPEN } });
    expect(res.denied_response!.status.code).toBe(400);
  });

  it('decisions come back once a working set is active', async () => {
    server.policySet.swap(await compilePolicyDirectory(dir));
    expect((await client.check(read())).status.code).toBe(0);
  });
});

describe('deadlines', () => {
  // 200 policies with a `like` that scans the whole path: a 100 KB path takes
  // well over 100 ms to decide, an ordinary one well under a millisecond.
  const slowPolicies = Array.from(
    { length: 200 },
    (_, i) => `@id("scan-${i}") forbid(principal, action, resource) when { context.path like "*a*a*a*b${i}" };`,
  ).join('\n');
  const slowPath = '/x/' + 'a'.repeat(100_000);
  let dir: string;
  let timed: TestServer;
  let untimed: TestServer;
  let tc: AuthzClient;
  let uc: AuthzClient;

  beforeAll(async () => {
    dir = policyDir({ 'main.cedar': ALLOW_READS, 'slow.cedar': slowPolicies });
    // The decision cache is off: a cached answer would (rightly) come back fast, and these tests need every request evaluated.
    [timed, untimed] = await Promise.all([
      // Cedar's wasm build: the JS engine's `like` decides even the 100 KB path in well under a millisecond.
      startTestServer({ policies: dir, decisionTimeout: '30ms', decisionCacheEntries: 0, engine: 'wasm' }),
      startTestServer({ policies: dir, decisionCacheEntries: 0, engine: 'wasm' }),
    ]);
    tc = connectAuthz(timed.grpcPort);
    uc = connectAuthz(untimed.grpcPort);
  });
  afterAll(async () => {
    tc?.close();
    uc?.close();
    await Promise.all([timed?.close(), untimed?.close()]);
    removeDir(dir);
  });

  it('past --decision-timeout the route fails closed, saying so', async () => {
    expectFailClosed(await tc.check(read({}, slowPath)), /within the 30 ms decision timeout/);
  });

  it('past --decision-timeout a fail_mode=open route is let through', async () => {
    const res = await tc.check(read(OPEN, slowPath));
    expectFailOpen(res);
    expect(timed.logLines().find((l) => l.decision_id === decisionId(res))).toMatchObject({
      decision: 'fail_open',
      fail_cause: 'deadline_exceeded',
    });
  });

  it('without our own timeout the slow request is decided normally', async () => {
    expect((await uc.check(read({}, slowPath))).status.code).toBe(0);
  });

  it("Envoy's gRPC deadline counts too: the late answer is a fail-mode answer, logged and counted", async () => {
    const before = metricValue(
      await untimed.metricsText(),
      'authz_decisions_total{decision="deny",reason="fail_closed"}',
    );
    // Envoy gives up after 40 ms (its ext_authz timeout); our answer arrives too late for it either way.
    await expect(uc.check(read({}, slowPath + '?late=1'), 40)).rejects.toMatchObject({ code: 4 });
    // Decision lines cut long strings (docs/security.md): the 100 KB path is logged as its first 1,024 characters.
    const logged = cutString(slowPath, DEFAULT_LOG_MAX_STRING);
    const line = await eventually(
      () => untimed.logLines().find((l) => l.path === logged && l.reason === 'fail_closed'),
      5000,
    );
    expect(line).toMatchObject({
      decision: 'deny',
      status: 503,
      fail_cause: 'deadline_exceeded',
      message: 'the decision could not be made before the deadline Envoy set for this check; failing closed',
    });
    expect(
      metricValue(await untimed.metricsText(), 'authz_decisions_total{decision="deny",reason="fail_closed"}'),
    ).toBe(before + 1);
  });
});
