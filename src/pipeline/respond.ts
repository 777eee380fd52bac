/**
 * Outcome + route settings → the answer Envoy gets: enforcement (fail mode,
 * dry-run, enforce.ts), the allow effects of the policies and the bundle
 * (allow-effects.ts), and the CheckResponse (check-response.ts). Pure; the
 * server and `authz check` both end a check here.
 */
import type { ActiveBundle } from '../bundle/active-bundle.js';
import { enforceDecision, type Enforced } from '../enforcement/enforce.js';
import { routeSettings, type RouteDefaults, type RouteSettings } from '../enforcement/route-settings.js';
import type { SafetyOptions } from '../enforcement/safety-options.js';
import { applyAllowEffects, type EffectReport } from './allow-effects.js';
import { decisionToCheckResponse } from '../envoy/check-response.js';
import type { WireCheckResponse } from '../envoy/wire-types.js';
import type { CheckOutcome } from './decide-check.js';

export interface CheckReply {
  /** What Envoy is told (with effects), and as which outcome (allow, deny, dry_run_allow, fail_open). */
  readonly enforced: Enforced;
  readonly response: WireCheckResponse;
  /** Allow effects that conflicted or were left out, for the log and `authz check`. */
  readonly effects?: EffectReport;
}

/** The server's defaults for routes that say nothing: `--fail-mode`, and dry-run from `--dry-run` or the bundle. */
export function routeDefaultsFor(
  safety: Pick<SafetyOptions, 'failMode' | 'dryRun'>,
  set: ActiveBundle | null,
): RouteDefaults {
  return { failMode: safety.failMode, dryRun: safety.dryRun || set?.settings.enforcement === 'dry-run' };
}

/** The route's settings: its context_extensions over the server's defaults. */
export function routeOf(outcome: CheckOutcome, defaults: RouteDefaults): RouteSettings {
  return routeSettings(outcome.input?.contextExtensions, defaults);
}

export function respond(outcome: CheckOutcome, route: RouteSettings, set: ActiveBundle | null): CheckReply {
  const enforced = enforceDecision(outcome.decision, route, outcome.input?.headers);
  // Effects after the (possibly cached) decision, from this request's principal and context.
  const shaped = applyAllowEffects(enforced.answer, set, outcome);
  enforced.answer = shaped.decision;
  const p = outcome.principal;
  const response = decisionToCheckResponse(shaped.decision, {
    principal: p ? { type: p.type, id: p.id } : undefined,
    mode: set?.settings.mode,
    outcome: enforced.outcome,
  });
  return shaped.report ? { enforced, response, effects: shaped.report } : { enforced, response };
}
