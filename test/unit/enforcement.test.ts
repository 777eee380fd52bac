import { describe, expect, it } from 'vitest';
import type { Decision } from '../../src/decision.js';
import { decisionDeadline, waitLimitMs } from '../../src/enforcement/deadline.js';
import { DRY_RUN_HEADER, enforceDecision, FAIL_OPEN_HEADER } from '../../src/enforcement/enforce.js';
import { routeSettings, type RouteSettings } from '../../src/enforcement/route-settings.js';
import { decisionToCheckResponse } from '../../src/envoy/check-response.js';
import type { ReasonCode } from '../../src/reasons.js';

const CLOSED: RouteSettings = { failMode: 'closed', dryRun: false };
const OPEN: RouteSettings = { failMode: 'open', dryRun: false };
const DRY: RouteSettings = { failMode: 'closed', dryRun: true };

function deny(reason: ReasonCode, status: number, message = 'm', headers: Record<string, string> = {}): Decision {
  return {
    kind: 'deny',
    reason,
    status,
    message,
    policies: reason === 'policy_forbid' ? ['p'] : [],
    headers,
    decisionId: 'd',
    version: 'v1',
  };
}
const ALLOW: Decision = {
  kind: 'allow',
  reason: 'allowed',
  status: 200,
  message: 'allowed',
  policies: ['p'],
  headers: {},
  decisionId: 'd',
  version: 'v1',
};

describe('routeSettings', () => {
  const defaults = { failMode: 'closed' as const, dryRun: false };
  const rows: { name: string; ext: Record<string, string>; expected: RouteSettings }[] = [
    { name: 'no extensions: the defaults', ext: {}, expected: { failMode: 'closed', dryRun: false } },
    { name: 'fail_mode open', ext: { fail_mode: 'open' }, expected: { failMode: 'open', dryRun: false } },
    { name: 'enforcement dry-run', ext: { enforcement: 'dry-run' }, expected: { failMode: 'closed', dryRun: true } },
    {
      name: 'a typo in fail_mode fails closed and says so',
      ext: { fail_mode: 'opne' },
      expected: {
        failMode: 'closed',
        dryRun: false,
        warning: 'context_extensions["fail_mode"]="opne" is not open or closed; failing closed',
      },
    },
    {
      name: 'a typo in enforcement enforces and says so',
      ext: { enforcement: 'dryrun' },
      expected: {
        failMode: 'closed',
        dryRun: false,
        warning: 'context_extensions["enforcement"]="dryrun" is not dry-run or enforce; enforcing',
      },
    },
  ];
  for (const row of rows) it(row.name, () => expect(routeSettings(row.ext, defaults)).toEqual(row.expected));

  it('the route wins over server and bundle defaults, both ways', () => {
    expect(routeSettings({ fail_mode: 'closed', enforcement: 'enforce' }, { failMode: 'open', dryRun: true })).toEqual({
      failMode: 'closed',
      dryRun: false,
    });
    expect(routeSettings({ fail_mode: 'bogus' }, { failMode: 'open', dryRun: false }).failMode).toBe('closed');
  });
});

describe('enforceDecision', () => {
  const rows: {
    name: string;
    decision: Decision;
    route: RouteSettings;
    outcome: string;
    kind: string;
    status: number;
    reason: string;
    headers: Record<string, string>;
  }[] = [
    {
      name: 'allow stays allow',
      decision: ALLOW,
      route: DRY,
      outcome: 'allow',
      kind: 'allow',
      status: 200,
      reason: 'allowed',
      headers: {},
    },
    {
      name: 'policy deny is enforced',
      decision: deny('policy_forbid', 403),
      route: CLOSED,
      outcome: 'deny',
      kind: 'deny',
      status: 403,
      reason: 'policy_forbid',
      headers: {},
    },
    {
      name: 'dry-run turns a policy deny into an allow marked for the upstream',
      decision: deny('policy_forbid', 503, 'm', { 'retry-after': '60' }),
      route: DRY,
      outcome: 'dry_run_allow',
      kind: 'allow',
      status: 200,
      reason: 'policy_forbid',
      headers: { [DRY_RUN_HEADER]: 'deny' },
    },
    {
      name: 'dry-run covers no_permit',
      decision: deny('no_permit', 403),
      route: DRY,
      outcome: 'dry_run_allow',
      kind: 'allow',
      status: 200,
      reason: 'no_permit',
      headers: { [DRY_RUN_HEADER]: 'deny' },
    },
    {
      name: 'dry-run covers rate limits',
      decision: deny('rate_limited', 429),
      route: DRY,
      outcome: 'dry_run_allow',
      kind: 'allow',
      status: 200,
      reason: 'rate_limited',
      headers: { [DRY_RUN_HEADER]: 'deny' },
    },
    {
      name: 'dry-run never softens a malformed request',
      decision: deny('malformed_request', 400),
      route: DRY,
      outcome: 'deny',
      kind: 'deny',
      status: 400,
      reason: 'malformed_request',
      headers: {},
    },
    {
      name: 'dry-run never softens an oversized request',
      decision: deny('request_too_large', 431),
      route: DRY,
      outcome: 'deny',
      kind: 'deny',
      status: 431,
      reason: 'request_too_large',
      headers: {},
    },
    {
      name: 'no set, closed: 503 fail_closed',
      decision: deny('no_policy_set', 503, 'no policy set is active yet'),
      route: CLOSED,
      outcome: 'deny',
      kind: 'deny',
      status: 503,
      reason: 'fail_closed',
      headers: {},
    },
    {
      name: 'no set, open: allow marked fail-open',
      decision: deny('no_policy_set', 503),
      route: OPEN,
      outcome: 'fail_open',
      kind: 'allow',
      status: 200,
      reason: 'no_policy_set',
      headers: { [FAIL_OPEN_HEADER]: 'true' },
    },
    {
      name: 'evaluation error, open',
      decision: deny('evaluation_error', 503),
      route: OPEN,
      outcome: 'fail_open',
      kind: 'allow',
      status: 200,
      reason: 'evaluation_error',
      headers: { [FAIL_OPEN_HEADER]: 'true' },
    },
    {
      name: 'deadline, closed',
      decision: deny('deadline_exceeded', 503),
      route: CLOSED,
      outcome: 'deny',
      kind: 'deny',
      status: 503,
      reason: 'fail_closed',
      headers: {},
    },
    {
      name: 'dry-run does not open a closed route when the engine cannot decide',
      decision: deny('deadline_exceeded', 503),
      route: DRY,
      outcome: 'deny',
      kind: 'deny',
      status: 503,
      reason: 'fail_closed',
      headers: {},
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const e = enforceDecision(row.decision, row.route);
      expect(e.outcome).toBe(row.outcome);
      expect(e.answer).toMatchObject({ kind: row.kind, status: row.status, reason: row.reason, headers: row.headers });
    });
  }

  it('a fail-closed answer says why, and keeps the cause for the log', () => {
    const e = enforceDecision(deny('no_policy_set', 503, 'no policy set is active yet'), CLOSED);
    expect(e.failCause).toBe('no_policy_set');
    expect(JSON.parse(decisionToCheckResponse(e.answer).denied_response!.body).message).toBe(
      'no policy set is active yet; failing closed',
    );
  });

  it('marker headers a client sent are removed before the upstream sees them', () => {
    const forged = { [DRY_RUN_HEADER]: 'deny', [FAIL_OPEN_HEADER]: 'true', 'x-other': '1' };
    expect(
      decisionToCheckResponse(enforceDecision(ALLOW, CLOSED, forged).answer).ok_response!.headers_to_remove,
    ).toEqual([DRY_RUN_HEADER, FAIL_OPEN_HEADER]);
    const dry = decisionToCheckResponse(enforceDecision(deny('no_permit', 403), DRY, forged).answer).ok_response!;
    expect(dry.headers_to_remove).toEqual([FAIL_OPEN_HEADER]);
    expect(dry.headers.map((h) => h.header)).toEqual([{ key: DRY_RUN_HEADER, value: 'deny' }]);
    expect(
      decisionToCheckResponse(enforceDecision(ALLOW, CLOSED, { 'x-other': '1' }).answer).ok_response!.headers_to_remove,
    ).toBeUndefined();
  });
});

describe('decisionDeadline', () => {
  const rows = [
    { name: 'none at all', timeout: 0, grpc: Infinity, expected: { atMs: Infinity } },
    { name: 'only the gRPC deadline', timeout: 0, grpc: 1_500, expected: { atMs: 1_500, source: 'grpc' } },
    {
      name: 'only --decision-timeout',
      timeout: 50,
      grpc: undefined,
      expected: { atMs: 1_050, source: 'decision-timeout' },
    },
    {
      name: 'the sooner wins: ours',
      timeout: 50,
      grpc: new Date(1_200),
      expected: { atMs: 1_050, source: 'decision-timeout' },
    },
    { name: 'the sooner wins: Envoy', timeout: 500, grpc: new Date(1_200), expected: { atMs: 1_200, source: 'grpc' } },
  ];
  for (const row of rows)
    it(row.name, () => expect(decisionDeadline(1_000, row.timeout, row.grpc)).toMatchObject(row.expected));
});

describe('waitLimitMs: when a wait (for keys) must end for the answer to count', () => {
  const rows = [
    {
      name: 'our own timeout: the deadline itself',
      d: { atMs: 1_300, source: 'decision-timeout' as const },
      now: 1_000,
      expected: 1_300,
    },
    {
      name: "Envoy's deadline: 50 ms before it",
      d: { atMs: 2_000, source: 'grpc' as const },
      now: 1_000,
      expected: 1_950,
    },
    {
      name: "Envoy's deadline close: a tenth of the time left before it",
      d: { atMs: 1_100, source: 'grpc' as const },
      now: 1_000,
      expected: 1_090,
    },
    { name: 'no deadline: none', d: { atMs: Infinity, source: 'grpc' as const }, now: 1_000, expected: Infinity },
  ];
  for (const row of rows) it(row.name, () => expect(waitLimitMs(row.d, row.now)).toBe(row.expected));
});
