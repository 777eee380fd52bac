/**
 * Which mode the alerts ask for, with a hold-down so a flapping alert does
 * not flap the fleet: a mapped alert firing engages its mode at once; the
 * fleet returns to normal only once every mapped alert has resolved and
 * stayed so for the hold-down. Pure state: the clock is an argument.
 */
import type { Mode } from '../bundle/bundle-settings.js';
import type { ReceivedAlert } from './alertmanager-payload.js';
import { ruleFor, strictestMode, type AlertRule } from './alert-rules.js';

export interface FiringAlert {
  name: string;
  fingerprint: string;
  mode: Mode;
  since: number;
}

export interface ObserveResult {
  /** Mapped alerts in this payload, with the mode their rule names. */
  mapped: { alert: ReceivedAlert; mode: Mode }[];
  /** Alerts no rule matches: changed nothing. */
  unmapped: ReceivedAlert[];
}

/** What the fleet should be in now. */
export type Wanted =
  | { kind: 'engage'; mode: Mode; firing: FiringAlert[] }
  /** Every mapped alert resolved; normal at `at` unless one fires again. */
  | { kind: 'hold'; at: number; resolved: FiringAlert[] }
  | { kind: 'return'; resolved: FiringAlert[] }
  /** Nothing engaged by alerts (at start, or after returning to normal). */
  | { kind: 'idle' };

export class AlertModeState {
  private readonly firing = new Map<string, FiringAlert>();
  /** The alerts that engaged the current episode and have since resolved (for the audit record of the return). */
  private resolved: FiringAlert[] = [];
  private quietSince: number | null = null;
  private engaged = false;

  constructor(
    private readonly rules: readonly AlertRule[],
    readonly holdDownMs: number,
  ) {}

  observe(alerts: readonly ReceivedAlert[], now: number): ObserveResult {
    const out: ObserveResult = { mapped: [], unmapped: [] };
    for (const alert of alerts) {
      const rule = ruleFor(this.rules, alert.labels);
      if (!rule) {
        out.unmapped.push(alert);
        continue;
      }
      out.mapped.push({ alert, mode: rule.mode });
      if (alert.status === 'firing') {
        if (!this.firing.has(alert.fingerprint))
          this.firing.set(alert.fingerprint, {
            name: alert.name,
            fingerprint: alert.fingerprint,
            mode: rule.mode,
            since: now,
          });
        this.engaged = true;
        this.quietSince = null;
      } else {
        const was = this.firing.get(alert.fingerprint);
        if (was) {
          this.firing.delete(alert.fingerprint);
          this.resolved.push(was);
          // The hold-down counts from the last resolution.
          if (this.firing.size === 0) this.quietSince = now;
        }
      }
    }
    return out;
  }

  wanted(now: number): Wanted {
    if (this.firing.size > 0) {
      const firing = [...this.firing.values()];
      return { kind: 'engage', mode: strictestMode(firing.map((f) => f.mode)), firing };
    }
    if (!this.engaged || this.quietSince === null) return { kind: 'idle' };
    const at = this.quietSince + this.holdDownMs;
    return now >= at
      ? { kind: 'return', resolved: [...this.resolved] }
      : { kind: 'hold', at, resolved: [...this.resolved] };
  }

  /** The fleet is back in normal: the episode is over. */
  returned(): void {
    this.engaged = false;
    this.quietSince = null;
    this.resolved = [];
  }

  get firingCount(): number {
    return this.firing.size;
  }

  /** For /status. */
  snapshot(now: number): Record<string, unknown> {
    const w = this.wanted(now);
    return {
      firing: [...this.firing.values()].map((f) => ({
        alert: f.name,
        fingerprint: f.fingerprint,
        mode: f.mode,
        since: new Date(f.since).toISOString(),
      })),
      wanted: w.kind === 'engage' ? w.mode : w.kind === 'idle' ? null : 'normal',
      normal_at: w.kind === 'hold' ? new Date(w.at).toISOString() : null,
      hold_down_ms: this.holdDownMs,
    };
  }
}
