/**
 * `--max-policy-age` (opt-in): a server that has not confirmed its version
 * with the store for longer than that stops claiming to be ready and answers
 * by its fail mode, so a server cut off from the store (and from NATS) cannot
 * enforce old rules forever without anyone noticing (OPA #4338).
 *
 * The flag is kept as a field read by the Check handler, and re-evaluated on a
 * timer, so the hot path pays for one property read, not a clock call.
 */
import { formatAge } from '../notify/fleet-status.js';

/** How often staleness is re-evaluated, at most (a tenth of the age, for short ages in tests and demos). */
export const STALE_CHECK_MS = 1_000;

export class StalePolicyGuard {
  /** True while the active version is older than allowed. */
  stale = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly maxAgeMs: number,
    private readonly confirmedAt: () => Date | undefined,
    private readonly onChange: (stale: boolean) => void,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    this.check();
    this.timer = setInterval(() => this.check(), Math.min(STALE_CHECK_MS, Math.max(50, this.maxAgeMs / 10)));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Milliseconds since the last confirmation; Infinity if there never was one. */
  ageMs(): number {
    const at = this.confirmedAt();
    return at ? Math.max(0, this.now() - at.getTime()) : Infinity;
  }

  check(): void {
    const stale = this.ageMs() > this.maxAgeMs;
    if (stale !== this.stale) {
      this.stale = stale;
      this.onChange(stale);
    }
  }

  /** The deny message, e.g. "v3 not confirmed with the store for 12m0s (--max-policy-age 10m0s)". */
  message(version: string): string {
    const age = this.ageMs();
    return `policy version ${version} not confirmed with the store ${age === Infinity ? 'since start' : `for ${formatAge(age)}`} (max policy age ${formatAge(this.maxAgeMs)})`;
  }

  describe(): Record<string, unknown> {
    const age = this.ageMs();
    return { max_policy_age_ms: this.maxAgeMs, stale: this.stale, age_ms: age === Infinity ? null : Math.round(age) };
  }
}
