/**
 * A decision is a value, not an exception. Every stage that can end a check
 * produces one of these, and `envoy/check-response.ts` turns it into Envoy's
 * CheckResponse in one place.
 */
import type { ReasonCode } from './reasons.js';

export type DecisionKind = 'allow' | 'deny';

export interface Decision {
  kind: DecisionKind;
  /** Stable code; also the `reason` label of metrics and the decision log. */
  reason: ReasonCode;
  /** HTTP status Envoy sends downstream on a deny (200 on allow). */
  status: number;
  message: string;
  /** Determining policy ids, in policy-set order. */
  policies: string[];
  /** Headers for the downstream response (deny) or upstream request (allow). */
  headers: Record<string, string>;
  /** Headers added to the downstream response on an allow. */
  responseHeaders?: Record<string, string>;
  /** Request headers removed before the upstream sees them (allow only). */
  headersToRemove?: string[];
  /** Query parameters removed before the upstream sees the request (allow only). */
  queryParametersToRemove?: string[];
  decisionId: string;
  /** Version of the policy set that decided; null when none was active. */
  version: string | null;
}

export const ALLOW_STATUS = 200;
export const DEFAULT_DENY_STATUS = 403;
export const DEFAULT_DENY_MESSAGE = 'no policy permits this request';
