/**
 * The pipeline's stages, one row each: what stops a check where, and the
 * outcome value it returns (before enforcement); then respond() turning
 * outcomes into what Envoy is told, per route. Real Cedar, real sets.
 */
import { describe, expect, it } from 'vitest';
import { filesToPolicySetSource } from '../../src/bundle/format/bundle-files.js';
import { compileBundle, type ActiveBundle } from '../../src/bundle/active-bundle.js';
import { NO_DEADLINE, type Deadline } from '../../src/enforcement/deadline.js';
import { refusedCheckRequest } from '../../src/envoy/check-request-limits.js';
import { simpleRequestToCheckRequest, type SimpleRequest } from '../../src/envoy/simple-request.js';
import type { WireCheckRequest } from '../../src/envoy/wire-types.js';
import { decideCheck, type CheckOutcome, type PipelineDeps } from '../../src/pipeline/decide-check.js';
import { respond } from '../../src/pipeline/respond.js';
import { RateLimiter } from '../../src/ratelimit/rate-limiter.js';

const POLICIES = `
@id("reads") permit(principal, action in Action::"read", resource);
@id("sign-in-first") @status("401") forbid(principal is Anonymous, action, resource) when { context.path == "/account" };
`;
const BUNDLE_YAML = `rateLimits:
  - name: two-per-client
    match: { pathPrefix: /limited }
    key: source.ip
    normal: { requestsPerSecond: 0.001, burst: 2 }
`;

function setOf(): ActiveBundle {
  const files = new Map([
    ['main.cedar', Buffer.from(POLICIES)],
    ['bundle.yaml', Buffer.from(BUNDLE_YAML)],
  ]);
  return compileBundle(filesToPolicySetSource(files, 'v1'));
}
const set = setOf();
const request = (r: Partial<SimpleRequest> = {}): WireCheckRequest =>
  simpleRequestToCheckRequest({ method: 'GET', path: '/x', host: 'orders', sourceIp: '10.0.0.1', ...r });
const PASSED: Deadline = { atMs: 0, source: 'decision-timeout' };

function decide(
  req: WireCheckRequest,
  deps: PipelineDeps = {},
  s: ActiveBundle | null = set,
  deadline: Deadline = NO_DEADLINE,
): CheckOutcome {
  const out = decideCheck(req, s, deps, deadline, 'id-1');
  if (out instanceof Promise) throw new Error('no token to verify: the pipeline answers synchronously');
  return out;
}

describe('decideCheck', () => {
  it.each([
    { name: 'an allow', run: () => decide(request()), reason: 'allowed', status: 200, principal: 'Anonymous' },
    {
      name: 'a policy 401 (no challenge without bearer tokens configured)',
      run: () => decide(request({ path: '/account' })),
      reason: 'policy_forbid',
      status: 401,
    },
    {
      name: 'a transport refusal',
      run: () => decide(refusedCheckRequest({ reason: 'request_too_large', message: 'too large' })),
      reason: 'request_too_large',
      status: 431,
    },
    { name: 'no set yet', run: () => decide(request(), {}, null), reason: 'no_policy_set', status: 503 },
    {
      name: 'a stale set',
      run: () => decide(request(), { staleGuard: { stale: true, message: (v) => `${v} is stale` } }),
      reason: 'policy_stale',
      status: 503,
    },
    {
      name: 'a deadline already passed',
      run: () => decide(request(), { decisionTimeoutMs: 5 }, set, PASSED),
      reason: 'deadline_exceeded',
      status: 503,
    },
  ])('$name', ({ run, reason, status, principal }) => {
    const out = run();
    expect(out.decision).toMatchObject({ reason, status, decisionId: 'id-1' });
    if (principal) expect(out.principal?.type).toBe(principal);
    expect(out.internalError).toBeUndefined();
  });

  it('rate limits count before Cedar, with the principal Cedar would see; no limiter, no limits', () => {
    const deps = { limiter: new RateLimiter(), rateLimitNowMs: () => 1_000 };
    const limited = request({ path: '/limited/1' });
    expect([1, 2, 3].map(() => decide(limited, deps).decision.reason)).toEqual(['allowed', 'allowed', 'rate_limited']);
    const hit = decide(limited, deps);
    expect(hit).toMatchObject({
      decision: { status: 429 },
      rateLimit: { rule: 'two-per-client' },
      principal: { type: 'Anonymous' },
    });
    expect(hit.engine).toBeUndefined();
    expect(decide(limited).decision.reason).toBe('allowed');
  });
});

describe('respond', () => {
  const rows = [
    {
      name: 'an allow',
      out: () => decide(request()),
      route: { failMode: 'closed', dryRun: false },
      outcome: 'allow',
      code: 0,
    },
    {
      name: 'no set, closed route',
      out: () => decide(request(), {}, null),
      route: { failMode: 'closed', dryRun: false },
      outcome: 'deny',
      code: 7,
      reason: 'fail_closed',
    },
    {
      name: 'no set, open route',
      out: () => decide(request(), {}, null),
      route: { failMode: 'open', dryRun: false },
      outcome: 'fail_open',
      code: 0,
      reason: 'no_policy_set',
    },
    {
      name: 'a deny in dry-run',
      out: () => decide(request({ path: '/account' })),
      route: { failMode: 'closed', dryRun: true },
      outcome: 'dry_run_allow',
      code: 0,
      reason: 'policy_forbid',
    },
  ] as const;
  it.each(rows)('$name', ({ out, route, outcome, code, ...rest }) => {
    const reply = respond(out(), { ...route }, set);
    expect(reply.enforced.outcome).toBe(outcome);
    expect(reply.response.status.code).toBe(code);
    expect(reply.response.dynamic_metadata?.fields?.decision.stringValue).toBe(outcome);
    if ('reason' in rest) expect(reply.response.dynamic_metadata?.fields?.reason.stringValue).toBe(rest.reason);
  });
});
