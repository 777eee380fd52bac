/**
 * Compile a policy set without stalling the thread that serves requests:
 * parse, validate and analyse in a worker thread, then preparse the slices
 * here, one small step per event-loop turn. Requests keep being answered (by
 * the current set) between steps; the caller swaps the new set in when this
 * resolves.
 *
 * Preparsing has to happen on this thread: Cedar's preparsed sets live in the
 * wasm instance's thread-local store. Chunks hold at most MAX_POLICIES_PER_PSET
 * policies, so one step stays under the 10 ms stall budget.
 */
import { Worker } from 'node:worker_threads';
import { assemblePolicySet, compilePolicySet, PolicySetError, type CompiledPolicy, type CompiledPolicySet } from './compile.js';
import type { ShippedPolicy, WorkerMessage } from './compile-worker.js';
import { RESOURCE_TYPE } from './cedar-request.js';
import type { EntityJson, PolicyJson } from './cedar-wasm.js';
import { EntityStore } from './entity-store.js';
import type { PolicySetSource } from './policy-set-source.js';
import type { ReadSet } from './projection.js';
import type { ChunkPlan, PolicyScope, ResourceRef, SlicePlan } from './slicing.js';

/** Yield to the event loop once a step has held it this long. */
export const STEP_BUDGET_MS = 2;

export interface ChunkedCompileResult {
  set: CompiledPolicySet;
  /** Longest single step on this thread (ms, wall clock): what a request may have waited behind. */
  longestStepMs: number;
  /** Where parsing ran: "worker", or "main" when no worker could start. */
  parsedIn: 'worker' | 'main';
}

interface Parsed {
  policies: Map<string, CompiledPolicy>;
  prepared?: { readsOf: Map<string, ReadSet>; scopes: Map<string, PolicyScope>; leanEntities: EntityJson[] };
  entities: EntityJson[];
}

const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export async function compilePolicySetInChunks(source: PolicySetSource): Promise<ChunkedCompileResult> {
  let longest = 0;
  let stepStart = 0;
  /** Call between pieces of work: yields once the current step has used its budget. */
  const checkpoint = async (): Promise<void> => {
    const held = performance.now() - stepStart;
    if (held < STEP_BUDGET_MS) return;
    longest = Math.max(longest, held);
    await yieldTurn();
    stepStart = performance.now();
  };

  let parsed: Parsed;
  let parsedIn: 'worker' | 'main' = 'worker';
  try {
    parsed = await parseInWorker(source);
  } catch (err) {
    if (err instanceof PolicySetError) throw err;
    // No worker (a locked-down runtime): parse here, correct but blocking; the result says so.
    parsedIn = 'main';
    const set = compilePolicySet(source);
    parsed = { policies: new Map(set.policies), entities: set.entities.all() };
    set.retire();
  }
  stepStart = performance.now();

  const entities = new EntityStore(parsed.entities);
  const p = parsed.prepared;
  const prepared = p ? { readsOf: p.readsOf, scopes: p.scopes, leanEntities: new EntityStore(p.leanEntities) } : undefined;
  await checkpoint();
  const set = assemblePolicySet(source, parsed.policies, entities, prepared);
  await checkpoint();
  try {
    // Plan every (action, resource) pair the policies name, then preparse each distinct chunk once.
    const plans: Array<[string, ResourceRef, SlicePlan]> = [];
    const missing = new Map<string, ChunkPlan>();
    for (const [action, resource] of set.slices.knownPairs(RESOURCE_TYPE)) {
      const plan = set.slices.plan(action, resource);
      plans.push([action, resource, plan]);
      for (const c of plan.chunks) if (!set.slices.hasChunk(c.signature)) missing.set(c.signature, c);
      await checkpoint();
    }
    for (const chunk of missing.values()) {
      set.slices.preparseChunk(chunk);
      await checkpoint();
    }
    // Remember every known pair now, so the first requests find their slice ready.
    for (const [action, resource, plan] of plans) {
      set.slices.sliceFor(action, resource, plan);
      await checkpoint();
    }
  } catch (err) {
    set.retire();
    throw err instanceof PolicySetError ? err : new PolicySetError((err as Error).message);
  }
  longest = Math.max(longest, performance.now() - stepStart);
  return { set, longestStepMs: longest, parsedIn };
}

/** A policy whose JSON is parsed from its text on first read (slicing does not need it). */
function receivePolicy({ jsonText, scope: _scope, reads: _reads, ...rest }: ShippedPolicy): CompiledPolicy {
  let json: PolicyJson | undefined;
  return Object.defineProperty(rest, 'json', {
    get: () => (json ??= JSON.parse(jsonText) as PolicyJson),
    enumerable: true,
  }) as CompiledPolicy;
}

/** Parse + validate + analyse in a worker. Rejects with a PolicySetError for a bad set, another error if the worker failed. */
function parseInWorker(source: PolicySetSource): Promise<Parsed> {
  return new Promise((resolve, reject) => {
    const worker = startCompileWorker(source);
    const policies = new Map<string, CompiledPolicy>();
    const readsOf = new Map<string, ReadSet>();
    const scopes = new Map<string, PolicyScope>();
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      void worker.terminate();
      fn();
    };
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'policies') {
        for (const shipped of m.batch) {
          policies.set(shipped.id, receivePolicy(shipped));
          readsOf.set(shipped.id, shipped.reads);
          scopes.set(shipped.id, shipped.scope);
        }
      } else if (m.type === 'done') {
        finish(() => resolve({ policies, entities: m.entities, prepared: { readsOf, scopes, leanEntities: m.leanEntities } }));
      } else {
        finish(() => reject(new PolicySetError(m.message)));
      }
    });
    worker.on('error', (err) => finish(() => reject(err)));
    worker.on('exit', (code) => finish(() => reject(new Error(`compile worker exited with code ${code}`))));
  });
}

/**
 * The worker runs the compiled compile-worker.js next to this file. Under tsx
 * or vitest (this file is .ts) the worker has to load TypeScript itself: Node
 * 20 does not apply `--import` loaders to a worker's entry module, so a small
 * bootstrap registers tsx first.
 */
function startCompileWorker(source: PolicySetSource): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const entry = new URL('./compile-worker.ts', here).href;
    const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
    return new Worker(boot, { eval: true, workerData: { source } });
  }
  return new Worker(new URL('./compile-worker.js', here), { workerData: { source } });
}
