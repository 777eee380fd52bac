/**
 * Decision + route settings → the answer Envoy gets. Pure.
 *
 * - fail mode: when the engine could not decide (no policy set yet, a set too
 *   long unconfirmed under --max-policy-age, evaluation
 *   threw, deadline passed), a closed route denies with 503 saying why and an
 *   open route allows with `x-authz-fail-open: true` for the upstream;
 * - dry-run: a deny made by the rules (policies, rate limits, credentials) is
 *   answered as an allow with `x-authz-dry-run-decision: deny`, while logs
 *   and metrics keep the real decision.
 *
 * Input errors (malformed or oversized requests) are never softened: a request
 * we cannot read is a 400/431 in every mode.
 */
import type { Decision } from '../decision.js';
import { ALLOW_STATUS } from '../decision.js';
import { REASONS, type ReasonCode } from '../reasons.js';
import type { RouteSettings } from './route-settings.js';

export const DRY_RUN_HEADER = 'x-authz-dry-run-decision';
export const FAIL_OPEN_HEADER = 'x-authz-fail-open';
/** Headers only we may set: a client sending them would mislead the upstream, so they are stripped. */
export const MARKER_HEADERS = [DRY_RUN_HEADER, FAIL_OPEN_HEADER] as const;

/** Reasons meaning "the engine could not decide": the route's fail mode answers. */
export const FAIL_MODE_REASONS: ReadonlySet<ReasonCode> = new Set<ReasonCode>([
  'no_policy_set',
  'policy_stale',
  'evaluation_error',
  'deadline_exceeded',
]);
/**
 * Reasons dry-run never turns into an allow: requests we cannot read, and
 * outages (an issuer whose keys cannot be fetched is not a rule's verdict).
 */
const ALWAYS_ENFORCED: ReadonlySet<ReasonCode> = new Set<ReasonCode>([
  'malformed_request',
  'request_too_large',
  'fail_closed',
  'identity_unavailable',
]);

/** The `decision` label of authz_decisions_total. */
export type Outcome = 'allow' | 'deny' | 'dry_run_allow' | 'fail_open';

export interface Enforced {
  /** What Envoy is told. */
  answer: Decision;
  outcome: Outcome;
  /** For fail-mode answers: what kept the engine from deciding. */
  failCause?: ReasonCode;
}

export function enforceDecision(
  decision: Decision,
  route: RouteSettings,
  requestHeaders?: Readonly<Record<string, string>>,
): Enforced {
  if (decision.kind === 'deny') {
    if (FAIL_MODE_REASONS.has(decision.reason)) return failMode(decision, route, requestHeaders);
    if (route.dryRun && !ALWAYS_ENFORCED.has(decision.reason)) {
      return { answer: allowWith(decision, DRY_RUN_HEADER, 'deny', requestHeaders), outcome: 'dry_run_allow' };
    }
    return { answer: decision, outcome: 'deny' };
  }
  const forged = forgedMarkers(requestHeaders, undefined);
  return { answer: forged ? { ...decision, headersToRemove: forged } : decision, outcome: 'allow' };
}

function failMode(
  decision: Decision,
  route: RouteSettings,
  requestHeaders: Readonly<Record<string, string>> | undefined,
): Enforced {
  const cause = decision.reason;
  if (route.failMode === 'open') {
    return {
      answer: allowWith(decision, FAIL_OPEN_HEADER, 'true', requestHeaders),
      outcome: 'fail_open',
      failCause: cause,
    };
  }
  const answer: Decision = {
    ...decision,
    reason: 'fail_closed',
    status: REASONS.fail_closed.status,
    message: `${decision.message}; failing closed`,
  };
  return { answer, outcome: 'deny', failCause: cause };
}

/** An allow that keeps the original reason (the metric label) and marks the request for the upstream. */
function allowWith(
  decision: Decision,
  header: string,
  value: string,
  requestHeaders: Readonly<Record<string, string>> | undefined,
): Decision {
  const answer: Decision = {
    kind: 'allow',
    reason: decision.reason,
    status: ALLOW_STATUS,
    message: decision.message,
    policies: decision.policies,
    headers: { [header]: value },
    decisionId: decision.decisionId,
    version: decision.version,
  };
  const forged = forgedMarkers(requestHeaders, header);
  if (forged) answer.headersToRemove = forged;
  return answer;
}

function forgedMarkers(
  headers: Readonly<Record<string, string>> | undefined,
  setting: string | undefined,
): string[] | undefined {
  if (!headers) return undefined;
  let out: string[] | undefined;
  for (const h of MARKER_HEADERS) {
    if (h !== setting && headers[h] !== undefined) (out ??= []).push(h);
  }
  return out;
}
