/**
 * Holds the policy set that answers requests and swaps it atomically: a
 * request reads `current` once and uses that object to the end, so it never
 * sees half of a set. A set that fails to compile is refused and the previous
 * one keeps serving.
 */
import { compilePolicySet, PolicySetError, type CompiledPolicySet } from '../cedar/compile.js';
import type { PolicySetSource } from '../cedar/policy-set-source.js';

export interface ActivationObserver {
  onActivated?(set: CompiledPolicySet, previous: CompiledPolicySet | null, durationMs: number): void;
  onRefused?(error: Error, version: string | undefined): void;
}

export type ActivationResult = { ok: true; set: CompiledPolicySet } | { ok: false; error: Error };

export class ActivePolicySet {
  private active: CompiledPolicySet | null = null;
  private lastErrorValue: { message: string; at: Date; version?: string } | null = null;
  private readonly observers: ActivationObserver[] = [];

  get current(): CompiledPolicySet | null {
    return this.active;
  }

  get lastError(): { message: string; at: Date; version?: string } | null {
    return this.lastErrorValue;
  }

  observe(o: ActivationObserver): void {
    this.observers.push(o);
  }

  /** Compile and, on success, swap in. Never throws. */
  activateSource(source: PolicySetSource): ActivationResult {
    const started = performance.now();
    let set: CompiledPolicySet;
    try {
      set = compilePolicySet(source);
    } catch (err) {
      return this.refuse(err as Error, source.version);
    }
    return this.swap(set, performance.now() - started);
  }

  /** Swap in an already compiled set (e.g. compiled off-thread or in chunks). */
  swap(set: CompiledPolicySet, durationMs = 0): ActivationResult {
    const previous = this.active;
    this.active = set;
    this.lastErrorValue = null;
    for (const o of this.observers) o.onActivated?.(set, previous, durationMs);
    return { ok: true, set };
  }

  /** Drop the set (a cleared shadow version); answers fall back to the fail mode. */
  clear(): void {
    this.active = null;
    this.lastErrorValue = null;
  }

  refuse(error: Error, version?: string): ActivationResult {
    const err = error instanceof PolicySetError ? error : new PolicySetError(error.message);
    this.lastErrorValue = { message: err.message, at: new Date(), ...(version ? { version } : {}) };
    for (const o of this.observers) o.onRefused?.(err, version);
    return { ok: false, error: err };
  }
}
