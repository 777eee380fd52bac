/**
 * The server's compile: the same set as `compilePolicySet`, without loading
 * Cedar in the serving thread and without stalling it. Cedar's front end
 * (parse, validate, `policyToJson`, entities check) runs in a compile worker
 * process that exits afterwards (compile-in-worker.ts); this thread waits for it
 * free, then assembles the set with JS only (compile.ts `assembleSteps`), one
 * small piece at a time with a yield to the event loop whenever a step has
 * held it STEP_BUDGET_MS, so requests keep being answered by the current set;
 * the caller swaps the new one in when this resolves.
 *
 * With `--engine wasm` the slices are preparsed here too (preparsed sets live
 * in this thread's Cedar store), one chunk per step.
 */
import { assembleSteps, type CompiledPolicySet, type CompileOptions } from './compile.js';
import { readWithCedarInWorker } from './compile-in-worker.js';
import type { PolicySetSource } from './policy-set-source.js';

/** Yield to the event loop once a step has held it this long. */
export const STEP_BUDGET_MS = 2;

export interface ChunkedCompileResult {
  set: CompiledPolicySet;
  /** Longest single step (ms, wall clock): the most a request waited behind this compile. */
  longestStepMs: number;
  /**
   * CPU time of the step that used the most (ms, this process): what the step
   * itself costs, apart from time the machine gave to other processes while it
   * ran, which the wall-clock figure includes on a loaded host.
   */
  longestStepCpuMs: number;
  /** Which phase the longest step (wall clock) belonged to (compile.ts `AssemblyPhase`). */
  longestStepPhase: string;
  /** Steps taken (event-loop turns given back). */
  steps: number;
  /** Wall time of Cedar's front end in the worker (start, parse, validate, answer), this thread free meanwhile. */
  workerMs: number;
}

const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export async function compilePolicySetInChunks(
  source: PolicySetSource,
  options: CompileOptions = {},
): Promise<ChunkedCompileResult> {
  const workerStart = performance.now();
  const frontEnd = await readWithCedarInWorker(source, options.worker);
  const workerMs = performance.now() - workerStart;

  const assembly = assembleSteps(source, frontEnd, { ...options, warm: true });
  let longest = 0;
  let longestCpu = 0;
  let longestPhase = '';
  let steps = 0;
  let stepStart = performance.now();
  let stepCpu = process.cpuUsage();
  for (;;) {
    const next = assembly.next();
    const held = performance.now() - stepStart;
    if (held > longest) {
      longest = held;
      longestPhase = next.done ? 'end' : next.value;
    }
    if (next.done || held >= STEP_BUDGET_MS) {
      const cpu = process.cpuUsage(stepCpu);
      longestCpu = Math.max(longestCpu, (cpu.user + cpu.system) / 1000);
    }
    if (next.done)
      return {
        set: next.value,
        longestStepMs: longest,
        longestStepCpuMs: longestCpu,
        longestStepPhase: longestPhase,
        steps,
        workerMs,
      };
    if (held >= STEP_BUDGET_MS) {
      steps++;
      await yieldTurn();
      stepStart = performance.now();
      stepCpu = process.cpuUsage();
    }
  }
}
