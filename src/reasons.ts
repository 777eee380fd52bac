/**
 * Reason codes: stable strings used in decisions, metrics labels and logs.
 * The table also gives the default HTTP status for a deny with that reason,
 * so there is exactly one place that maps reasons to statuses.
 */
export const REASONS = {
  allowed: { status: 200, message: 'allowed' },
  policy_forbid: { status: 403, message: 'denied by policy' },
  no_permit: { status: 403, message: 'no policy permits this request' },
  malformed_request: { status: 400, message: 'malformed CheckRequest' },
  request_too_large: { status: 431, message: 'request headers too large' },
  /** The Host names another known service than the destination identity the mesh vouches for. */
  host_mismatch: { status: 403, message: 'the host names another service than the destination identity' },
  /** No mesh identity names the target and bundle.yaml lets no Host decide (frontProxy: false). */
  no_destination_identity: { status: 403, message: 'the request names no destination the mesh vouches for' },
  no_policy_set: { status: 503, message: 'no policy set is active yet' },
  /** --max-policy-age: the active version has not been confirmed with the store for too long. */
  policy_stale: {
    status: 503,
    message: 'the active policy version has not been confirmed with the store recently enough',
  },
  evaluation_error: { status: 503, message: 'the policy engine failed' },
  deadline_exceeded: { status: 503, message: 'the decision could not be made before the deadline' },
  rate_limited: { status: 429, message: 'rate limit exceeded' },
  unauthenticated: { status: 401, message: 'invalid or expired credentials' },
  identity_unavailable: { status: 503, message: "the token issuer's signing keys could not be fetched" },
  /** The engine could not decide (no set, evaluation threw, deadline) and the route fails closed. */
  fail_closed: { status: 503, message: 'the authorization service could not decide; failing closed' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ReasonCode = keyof typeof REASONS;

export const REASON_CODES = Object.keys(REASONS) as ReasonCode[];
