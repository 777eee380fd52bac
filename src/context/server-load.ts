/**
 * `context.load`: this server's own event-loop utilisation over the last few
 * seconds, 0–100. It is per server (per replica), not per cluster: each
 * replica sheds by its own pressure, which is what protects it.
 *
 * A timer samples Node's cumulative eventLoopUtilization and keeps the deltas
 * of the last window; the hot path only reads the number computed at the last
 * sample. A loop blocked for longer than the window shows up as one long
 * sample, which alone covers the window, so a stall reads as ~100.
 */
import { performance } from 'node:perf_hooks';

export const LOAD_SAMPLE_MS = 250;
export const DEFAULT_LOAD_WINDOW_MS = 5000;

export interface LoadSource {
  /** Integer 0–100. */
  current(): number;
}

/** For the CLI and callers without a server: no pressure. */
export const NO_LOAD: LoadSource = Object.freeze({ current: () => 0 });

/** A fixed load, e.g. `authz check --load 90`. */
export function fixedLoad(value: number): LoadSource {
  const v = Math.max(0, Math.min(100, Math.round(value)));
  return { current: () => v };
}

/** Cumulative milliseconds the loop spent idle and active, as perf_hooks reports them. */
export interface LoopTimes {
  idle: number;
  active: number;
}

const readLoopTimes = (): LoopTimes => performance.eventLoopUtilization();

interface Sample {
  idle: number;
  active: number;
}

export class EventLoopLoad implements LoadSource {
  private readonly samples: Sample[] = [];
  private last: LoopTimes;
  private value = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly windowMs: number = DEFAULT_LOAD_WINDOW_MS,
    private readonly sampleMs: number = Math.min(LOAD_SAMPLE_MS, Math.max(10, Math.floor(windowMs / 4))),
    private readonly read: () => LoopTimes = readLoopTimes,
  ) {
    this.last = read();
  }

  /** Start sampling from now: work done before (start-up, the first compile) does not count as load. */
  start(): this {
    this.last = this.read();
    this.samples.length = 0;
    this.value = 0;
    if (!this.timer) {
      this.timer = setInterval(() => this.sample(), this.sampleMs);
      this.timer.unref();
    }
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  current(): number {
    return this.value;
  }

  /** Take one sample now (the timer calls this; tests may too). */
  sample(): void {
    const now = this.read();
    const s = { idle: Math.max(0, now.idle - this.last.idle), active: Math.max(0, now.active - this.last.active) };
    this.last = now;
    this.samples.push(s);
    // Keep the newest samples that together cover the window (plus the one that crosses it).
    let covered = 0;
    let keep = 0;
    for (let i = this.samples.length - 1; i >= 0 && covered < this.windowMs; i--) {
      covered += this.samples[i].idle + this.samples[i].active;
      keep++;
    }
    if (keep < this.samples.length) this.samples.splice(0, this.samples.length - keep);
    let active = 0;
    let total = 0;
    for (const x of this.samples) {
      active += x.active;
      total += x.idle + x.active;
    }
    this.value = total > 0 ? Math.min(100, Math.round((100 * active) / total)) : 0;
  }
}
