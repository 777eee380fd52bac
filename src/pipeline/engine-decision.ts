/**
 * EngineResult → Decision, applying the answer-shaping annotations of the
 * first determining forbid (@status, @message, @retry_after).
 */
import { randomUUID } from 'node:crypto';
import { ALLOW_STATUS, DEFAULT_DENY_MESSAGE, DEFAULT_DENY_STATUS, type Decision } from '../decision.js';
import { REASONS, type ReasonCode } from '../reasons.js';
import type { CompiledPolicySet } from '../cedar/compile.js';
import type { EngineResult } from '../cedar/evaluate.js';

export function engineResultToDecision(
  set: CompiledPolicySet,
  result: EngineResult,
  decisionId: string = randomUUID(),
): Decision {
  if (result.decision === 'allow') {
    return {
      kind: 'allow',
      reason: 'allowed',
      status: ALLOW_STATUS,
      message: 'allowed',
      policies: result.determining,
      headers: {},
      decisionId,
      version: set.version,
    };
  }
  const first = result.determining.length > 0 ? set.policies.get(result.determining[0]) : undefined;
  if (!first) {
    return {
      kind: 'deny',
      reason: 'no_permit',
      status: DEFAULT_DENY_STATUS,
      message: DEFAULT_DENY_MESSAGE,
      policies: [],
      headers: {},
      decisionId,
      version: set.version,
    };
  }
  const a = first.annotations;
  const headers: Record<string, string> = {};
  if (a.retryAfterSeconds !== undefined) headers['retry-after'] = String(a.retryAfterSeconds);
  return {
    kind: 'deny',
    reason: 'policy_forbid',
    status: a.status ?? DEFAULT_DENY_STATUS,
    message: a.message ?? `forbidden by policy ${first.id}`,
    policies: result.determining,
    headers,
    decisionId,
    version: set.version,
  };
}

/** A deny that no policy made (malformed input, no set, engine failure, ...). */
export function denyFor(
  reason: ReasonCode,
  message: string,
  version: string | null,
  decisionId: string = randomUUID(),
): Decision {
  return {
    kind: 'deny',
    reason,
    status: REASONS[reason].status,
    message,
    policies: [],
    headers: {},
    decisionId,
    version,
  };
}
