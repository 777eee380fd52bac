/**
 * Holds the bundle that answers requests (active-bundle.ts: the engine's
 * policy set and the bundle's settings) and swaps it atomically: a request
 * reads `current` once and uses that object to the end, so it never sees half
 * of a bundle. A bundle that fails to compile is refused and the previous one
 * keeps serving.
 */
import { PolicySetError, type CompileOptions } from '../cedar/compile.js';
import { compileBundle, compileBundleInChunks, type ActiveBundle, type BundleContents } from './active-bundle.js';

/**
 * A replaced set is retired (its preparsed slices freed for reuse) this long
 * after the swap, not at once: work that captured it just before the swap and
 * finishes a moment later (a deferred log line, a shadow evaluation) still has it.
 */
export const RETIRE_GRACE_MS = 2000;

/** How a stepped compile shared the event loop (activations through `activate` only). */
export interface CompileSteps {
  /** Steps (event-loop turns given back to requests). */
  count: number;
  /** Longest the event loop was held by one step, in ms. */
  longestMs: number;
  /** Which phase that step was in (parse, validate, entities, plan, preparse, remember). */
  longestPhase: string;
}

export interface ActivationObserver {
  onActivated?(set: ActiveBundle, previous: ActiveBundle | null, durationMs: number, steps?: CompileSteps): void;
  onRefused?(error: Error, version: string | undefined): void;
}

export type ActivationResult = { ok: true; set: ActiveBundle } | { ok: false; error: Error };

export class ActivePolicySet {
  private active: ActiveBundle | null = null;
  private lastErrorValue: { message: string; at: Date; version?: string } | null = null;
  private readonly observers: ActivationObserver[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private compilingVersion: string | null = null;

  /** `engine`: which evaluator the sets compiled here use (default: the process's, engine-choice.ts). */
  constructor(private readonly compileOptions: CompileOptions = {}) {}

  get current(): ActiveBundle | null {
    return this.active;
  }

  /** Version being compiled by `activate` right now (the current set answers meanwhile), or null. */
  get compiling(): string | null {
    return this.compilingVersion;
  }

  get lastError(): { message: string; at: Date; version?: string } | null {
    return this.lastErrorValue;
  }

  observe(o: ActivationObserver): void {
    this.observers.push(o);
  }

  /** Compile and, on success, swap in. Never throws. */
  activateSource(source: BundleContents): ActivationResult {
    const started = performance.now();
    let set: ActiveBundle;
    try {
      set = compileBundle(source, this.compileOptions);
    } catch (err) {
      return this.refuse(err as Error, source.version);
    }
    return this.swap(set, performance.now() - started);
  }

  /**
   * Compile without stalling the event loop (worker + chunked preparse, see
   * compile-async.ts) and swap in. Requests keep being answered by the current
   * set until the swap. Activations run one at a time, in call order. Never throws.
   */
  activate(source: BundleContents): Promise<ActivationResult> {
    const run = async (): Promise<ActivationResult> => {
      const started = performance.now();
      this.compilingVersion = source.version;
      try {
        const {
          bundle: set,
          longestStepMs,
          longestStepPhase,
          steps,
        } = await compileBundleInChunks(source, this.compileOptions);
        return this.swap(set, performance.now() - started, {
          count: steps,
          longestMs: longestStepMs,
          longestPhase: longestStepPhase,
        });
      } catch (err) {
        return this.refuse(err as Error, source.version);
      } finally {
        this.compilingVersion = null;
      }
    };
    const next = this.queue.then(run);
    this.queue = next;
    return next;
  }

  /** Swap in an already compiled set (e.g. compiled off-thread or in chunks). */
  swap(set: ActiveBundle, durationMs = 0, steps?: CompileSteps): ActivationResult {
    const previous = this.active;
    this.active = set;
    this.lastErrorValue = null;
    for (const o of this.observers) o.onActivated?.(set, previous, durationMs, steps);
    if (previous && previous !== set) {
      setTimeout(() => {
        if (this.active !== previous) previous.policySet.retire();
      }, RETIRE_GRACE_MS).unref();
    }
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
