/**
 * The lines of `authz check` that say what, besides the policies, decides
 * this request on a server: the route's fail mode and dry-run, and the
 * bundle.yaml rate limits it counts against. Read from the same outcome and
 * route the answer was made from, so they cannot disagree with it.
 */
import type { ActiveBundle } from '../bundle/active-bundle.js';
import type { Enforced } from '../enforcement/enforce.js';
import { FAIL_OPEN_HEADER, DRY_RUN_HEADER } from '../enforcement/enforce.js';
import type { RouteSettings } from '../enforcement/route-settings.js';
import type { CheckOutcome } from '../pipeline/decide-check.js';
import type { RateLimiter } from '../ratelimit/rate-limiter.js';
import { REASONS } from '../reasons.js';

const INDENT = '            ';

/** The route's fail mode and enforcement, and what they did to this answer. */
export function enforcementLines(outcome: CheckOutcome, enforced: Enforced, route: RouteSettings): string[] {
  const failing =
    route.failMode === 'open'
      ? `an evaluation error or a missed deadline would be allowed (${FAIL_OPEN_HEADER}: true)`
      : `an evaluation error or a missed deadline would be denied (fail_closed, HTTP ${REASONS.fail_closed.status})`;
  const lines = [`route:      fail mode ${route.failMode}: ${failing}`];
  lines.push(
    route.dryRun
      ? `${INDENT}dry-run: a deny by the rules is answered as an allow (${DRY_RUN_HEADER}: deny)`
      : `${INDENT}enforcing: denies are answered as denies`,
  );
  if (route.warning) lines.push(`warning:    ${route.warning}`);
  const rules = outcome.decision;
  if (enforced.outcome === 'dry_run_allow') {
    lines.push(
      `dry-run:    the rules answer DENY (${rules.reason}, HTTP ${rules.status}): ${rules.message}; answered as an allow`,
    );
  }
  if (enforced.failCause) {
    lines.push(
      `fail mode:  ${enforced.failCause} (${rules.message}); the route fails ${route.failMode}, so it is ${enforced.outcome === 'fail_open' ? 'allowed' : 'denied'}`,
    );
  }
  return lines;
}

/**
 * Each rate limit rule the request counts against, and when it would deny:
 * from full buckets, a rule admits `burst` requests at once, then one every
 * 1/rate seconds.
 */
export function rateLimitLines(
  outcome: CheckOutcome,
  limiter: RateLimiter,
  set: ActiveBundle,
  prior: number,
): string[] {
  const { input, principal } = outcome;
  if (set.settings.rateLimits.length === 0) return [];
  if (set.settings.rateLimiting === 'envoy')
    return ["rate limit: counted by Envoy's rate limit service (bundle.yaml rateLimiting: envoy), not by this server"];
  if (!input || !principal) return [];
  const lines: string[] = [];
  for (const r of limiter.rulesMatching(set.settings, input, principal)) {
    const admits = Math.floor(r.share.burst);
    let line = `rate limit: "${r.rule}" (${r.share.requestsPerSecond}/s, burst ${r.share.burst}, per ${r.key}, ${r.mode} mode) would deny after ${admits} requests at once`;
    if (outcome.rateLimit?.rule === r.rule) line += `; it denies this one, after ${prior} earlier (--prior-requests)`;
    lines.push(line);
  }
  return lines.map((l, i) => (i === 0 ? l : INDENT + l.slice('rate limit: '.length)));
}
