/**
 * The duration setting: "500ms", "2s", "1m", "1h". A bare number is refused
 * (except 0): `pollInterval: 5` could mean 5 ms or 5 s, and guessing wrong
 * either floods the store or stalls every rollout.
 */
import { z } from 'zod';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "250ms", "2s", "1m", "1.5s" or a bare number of milliseconds → milliseconds. */
export function parseDurationMs(s: string | number): number | undefined {
  if (typeof s === 'number') return Number.isFinite(s) && s >= 0 ? s : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(s);
  if (!m) return undefined;
  return Number(m[1]) * UNIT_MS[m[2] ?? 'ms'];
}

const UNITLESS = /^\s*(\d+(?:\.\d+)?)\s*$/;

export const duration = z.union([z.string(), z.number()]).transform((v, ctx): number => {
  const bare = typeof v === 'number' ? v : UNITLESS.test(v) ? Number(v) : undefined;
  if (bare !== undefined && bare !== 0 && Number.isFinite(bare)) {
    ctx.addIssue({ code: 'custom', message: `${bare} has no unit; write ${bare}s or ${Math.round(bare * 1000)}ms` });
    return z.NEVER;
  }
  const ms = parseDurationMs(v);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a duration such as 500ms, 2s or 1m, got "${v}"` });
    return z.NEVER;
  }
  return ms;
});
