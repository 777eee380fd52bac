/**
 * Per-route safety settings. Envoy tells us about the route through
 * `context_extensions` (set per route or virtual host in the ext_authz
 * per-route config), so one server can fail open for a storefront and
 * closed for payments:
 *
 *   context_extensions: { fail_mode: "open", enforcement: "dry-run" }
 *
 * The route's own value wins over the bundle and the server flags. A value we
 * do not understand never loosens anything: an unknown fail_mode fails closed
 * and an unknown enforcement enforces.
 */
export const FAIL_MODES = ['closed', 'open'] as const;
export type FailMode = (typeof FAIL_MODES)[number];

export const FAIL_MODE_EXTENSION = 'fail_mode';
export const ENFORCEMENT_EXTENSION = 'enforcement';

export interface RouteSettings {
  failMode: FailMode;
  dryRun: boolean;
  /** Set when a context extension held a value we ignored (logged with the decision). */
  warning?: string;
}

export interface RouteDefaults {
  /** `--fail-mode` (default closed). */
  failMode: FailMode;
  /** `--dry-run`, or the active bundle's `enforcement: dry-run`. */
  dryRun: boolean;
}

export function routeSettings(
  ext: Readonly<Record<string, string>> | undefined,
  defaults: RouteDefaults,
): RouteSettings {
  const fail = ext?.[FAIL_MODE_EXTENSION];
  const enforcement = ext?.[ENFORCEMENT_EXTENSION];
  if (fail === undefined && enforcement === undefined) return defaults;
  const out: RouteSettings = { failMode: defaults.failMode, dryRun: defaults.dryRun };
  const warnings: string[] = [];
  if (fail !== undefined) {
    if (fail === 'open' || fail === 'closed') out.failMode = fail;
    else {
      out.failMode = 'closed';
      warnings.push(`context_extensions["${FAIL_MODE_EXTENSION}"]="${fail}" is not open or closed; failing closed`);
    }
  }
  if (enforcement !== undefined) {
    if (enforcement === 'dry-run') out.dryRun = true;
    else if (enforcement === 'enforce') out.dryRun = false;
    else {
      out.dryRun = false;
      warnings.push(
        `context_extensions["${ENFORCEMENT_EXTENSION}"]="${enforcement}" is not dry-run or enforce; enforcing`,
      );
    }
  }
  if (warnings.length > 0) out.warning = warnings.join('; ');
  return out;
}
