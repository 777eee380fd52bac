/**
 * Compile a policy set without stalling the thread that serves requests: the
 * same work as `compilePolicySet`, cut into small steps with a yield to the
 * event loop between them, so requests keep being answered (by the current
 * set) while a new one compiles; the caller swaps it in when this resolves.
 *
 * Steps are naturally small here: one policy's `policyToJson`, a few policies'
 * schema validation, one slice chunk's preparse (≤ MAX_POLICIES_PER_PSET
 * policies), a few KB of text for Cedar's splitter. Preparsing must happen on
 * this thread anyway (preparsed sets live in this wasm instance's store).
 *
 * Parsing stays on this thread: a worker (its own V8 isolate and wasm
 * instance) takes 0.3–0.6 s to start and adds 60–95 MB of RSS while it runs.
 * Schema validation of a large set is the exception (see
 * SCHEMA_WORKER_MIN_POLICIES): no single step of it fits in the budget.
 */
import {
  addPolicy,
  assemblePolicySet,
  checkEntities,
  checkSchema,
  compilePolicyText,
  entityStoreOf,
  policyTextsInSourceOrder,
  PolicySetError,
  refuseViolations,
  schemaViolations,
  splitPolicyFile,
  schemaEntitiesOf,
  type CompiledPolicy,
  type CompiledPolicySet,
  type CompileOptions,
  type SchemaViolation,
} from './compile.js';
import { defaultEngine } from './js/engine-choice.js';
import { JsPolicySet } from './js/js-policy-set.js';
import { Worker } from 'node:worker_threads';
import { RESOURCE_TYPE } from './action-hierarchy.js';
import { cedar } from './cedar-wasm.js';
import type { SchemaCheckAnswer, SchemaCheckJob } from './schema-check-worker.js';
import type { PolicyJson } from './cedar-wasm.js';
import type { PolicyFile, PolicySetSource } from './policy-set-source.js';
import { groupStatements, splitStatements } from './policy-text.js';
import { analysePolicies, emptyReadSet, mergeReadsInto, type ReadSet } from './reads.js';
import {
  scopeOfPolicy,
  type ChunkPlan,
  type EntityRef,
  type PolicyScope,
  type ResourceRef,
  type SlicePlan,
} from './slicing.js';

/** Yield to the event loop once a step has held it this long. */
export const STEP_BUDGET_MS = 2;
/** Text handed to Cedar's splitter at once (~25 typical policies; ~1–3 ms). */
export const SPLIT_PIECE_CHARS = 8 * 1024;
/** Policies validated per call on this thread (each call also parses the schema). */
export const VALIDATE_BATCH = 8;
/**
 * From this many policies, a set with a schema is validated in a worker thread:
 * each validate call re-parses the schema (~16 ms here), too long for one step.
 * Smaller sets validate here, in a few calls, rather than pay the worker's start.
 */
export const SCHEMA_WORKER_MIN_POLICIES = 100;

export interface ChunkedCompileResult {
  set: CompiledPolicySet;
  /** Longest single step (ms, wall clock): the most a request waited behind this compile. */
  longestStepMs: number;
  /** Which phase that step belonged to (parse, validate, entities, plan, preparse, remember). */
  longestStepPhase: string;
  /** Steps taken (event-loop turns given back). */
  steps: number;
  /** Where schema validation ran: a worker thread, this thread, or nowhere (no schema). */
  validatedIn: 'worker' | 'main' | 'none';
}

const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export async function compilePolicySetInChunks(
  source: PolicySetSource,
  options: CompileOptions = {},
): Promise<ChunkedCompileResult> {
  const engine = options.engine ?? defaultEngine();
  // The JS engine compiles each policy (@shadow ones too) while its JSON form is at hand (it is dropped afterwards).
  const js = engine === 'js' ? new JsPolicySet() : undefined;
  let longest = 0;
  let longestPhase = '';
  let phase = 'parse';
  let steps = 0;
  let stepStart = performance.now();
  const record = (held: number): void => {
    if (held > longest) {
      longest = held;
      longestPhase = phase;
    }
  };
  /** Call between pieces of work: yields once the current step has used its budget. */
  const checkpoint = async (): Promise<void> => {
    const held = performance.now() - stepStart;
    if (held < STEP_BUDGET_MS) return;
    record(held);
    steps++;
    await yieldTurn();
    stepStart = performance.now();
  };

  // 1. Split files and turn each policy into its JSON form, one policy per step at most.
  const policies = new Map<string, CompiledPolicy>();
  const readsOf = new Map<string, ReadSet>();
  const scopes = new Map<string, PolicyScope>();
  const allReads = emptyReadSet();
  let order = 0;
  for (const file of source.policies) {
    const texts = await splitFileInSteps(file, checkpoint);
    for (let n = 0; n < texts.length; n++) {
      const p = compilePolicyText(texts[n], file.name, n, order++, file.text);
      const reads = analysePolicies([p]);
      readsOf.set(p.id, reads);
      mergeReadsInto(allReads, reads);
      scopes.set(p.id, scopeOfPolicy(p));
      if (js) js.add(p);
      addPolicy(policies, withJsonOnDemand(p));
      await checkpoint();
    }
  }

  // 2. Schema validation and Cedar's check of entities.json.
  let validatedIn: ChunkedCompileResult['validatedIn'] = source.schema === undefined ? 'none' : 'main';
  let checkedInWorker = false;
  if (source.schema !== undefined && policies.size >= SCHEMA_WORKER_MIN_POLICIES) {
    record(performance.now() - stepStart);
    checkedInWorker = await checkInWorker(source, policies);
    // The wait was not a step: this thread was free while the worker ran.
    stepStart = performance.now();
  }
  if (checkedInWorker) {
    validatedIn = 'worker';
  } else {
    phase = 'validate';
    if (source.schema !== undefined) {
      checkSchema(source.schema);
      await checkpoint();
      const all = [...policies.values()];
      const violations: SchemaViolation[] = [];
      for (let i = 0; i < all.length; i += VALIDATE_BATCH) {
        violations.push(...schemaViolations(source.schema, all.slice(i, i + VALIDATE_BATCH)));
        await checkpoint();
      }
      refuseViolations(violations, policies, source.policies);
    }
    phase = 'entities';
    checkEntities(source.entities, source.schema, source.entitiesText);
    await checkpoint();
  }

  // 3. The entity store and the slice index (no Cedar store side effects yet).
  phase = 'entities';
  const entities = entityStoreOf(source.entities, schemaEntitiesOf(source.schema));
  await checkpoint();
  phase = 'index';
  const set = assemblePolicySet(source, policies, entities, { readsOf, scopes, allReads, js }, { engine });
  await checkpoint();

  // 4. Preparse the slices of every (action, resource) pair the policies name, each distinct chunk once.
  try {
    phase = 'plan';
    const plans: Array<[EntityRef, ResourceRef, SlicePlan]> = [];
    const missing = new Map<string, ChunkPlan>();
    for (const [action, resource] of set.slices.knownPairs(RESOURCE_TYPE)) {
      const plan = set.slices.plan(action, resource);
      plans.push([action, resource, plan]);
      for (const c of plan.chunks) if (!set.slices.hasChunk(c.signature)) missing.set(c.signature, c);
      await checkpoint();
    }
    phase = 'preparse';
    // The JS engine preparses a slice only if it falls back to wasm (slicing.ts `lazyPreparse`).
    if (engine === 'js') missing.clear();
    for (const chunk of missing.values()) {
      set.slices.preparseChunk(chunk);
      await checkpoint();
    }
    // Remember every known pair now, so the first requests find their slice ready.
    phase = 'remember';
    for (const [action, resource, plan] of plans) {
      set.slices.sliceFor(action, resource, plan);
      await checkpoint();
    }
  } catch (err) {
    set.retire();
    throw err instanceof PolicySetError ? err : new PolicySetError((err as Error).message);
  }
  record(performance.now() - stepStart);
  return { set, longestStepMs: longest, longestStepPhase: longestPhase, steps, validatedIn };
}

/**
 * The policy without its JSON form, which is parsed again from the text on
 * first read. Slicing and projection already took what they need from it;
 * kept, the JSON of 1,000 policies is ~100k long-lived objects (or, as
 * strings, ~1.5 MB), and copying them out of the young generation made
 * scavenges of 10–40 ms (measured) while this compile runs beside live traffic.
 */
function withJsonOnDemand({ json: _json, ...rest }: CompiledPolicy): CompiledPolicy {
  let parsed: PolicyJson | undefined;
  return Object.defineProperty(rest, 'json', {
    get: (): PolicyJson => {
      if (parsed === undefined) {
        const answer = cedar.policyToJson(rest.text);
        if (answer.type !== 'success') throw new Error(`policy ${rest.id} no longer parses`);
        parsed = answer.json;
      }
      return parsed;
    },
    enumerable: true,
  }) as CompiledPolicy;
}

/**
 * A file's policy texts, as `splitPolicyFile` gives them, but a large file goes
 * to Cedar a piece at a time. Should Cedar refuse a piece (a broken policy, or a
 * piece the scanner cut wrongly), the whole file is parsed in one call instead:
 * that answer (its texts, or its error message) is the one that counts.
 */
async function splitFileInSteps(file: PolicyFile, checkpoint: () => Promise<void>): Promise<string[]> {
  if (file.text.length <= SPLIT_PIECE_CHARS) return splitPolicyFile(file);
  const texts: string[] = [];
  for (const piece of groupStatements(splitStatements(file.text), SPLIT_PIECE_CHARS)) {
    const parts = policyTextsInSourceOrder(piece);
    if (!parts.ok || parts.templates > 0) return splitPolicyFile(file);
    texts.push(...parts.texts);
    await checkpoint();
  }
  return texts;
}

/**
 * Validate against the schema and check entities in a worker. Resolves true
 * when done (throws the refusal if the set is bad), false when no worker could
 * run (the caller then validates on this thread).
 */
async function checkInWorker(source: PolicySetSource, policies: Map<string, CompiledPolicy>): Promise<boolean> {
  const job: SchemaCheckJob = {
    schema: source.schema!,
    policies: [...policies.values()].map((p) => ({ id: p.id, text: p.text })),
    entities: source.entities,
  };
  let answer: SchemaCheckAnswer;
  try {
    answer = await new Promise<SchemaCheckAnswer>((resolve, reject) => {
      const worker = startWorker('schema-check-worker', { job });
      worker.once('message', (m: SchemaCheckAnswer) => {
        resolve(m);
        void worker.terminate();
      });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`schema check worker exited with code ${code}`)));
    });
  } catch {
    return false;
  }
  if ('error' in answer) {
    if (answer.refused) throw new PolicySetError(answer.error);
    return false;
  }
  refuseViolations(answer.violations, policies, source.policies);
  return true;
}

/**
 * A worker running the compiled `<name>.js` next to this file. Under tsx or
 * vitest (this file is .ts) it must load TypeScript itself, and Node 20 does
 * not apply `--import` loaders to a worker's entry: a bootstrap registers tsx.
 */
function startWorker(name: string, workerData: unknown): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const entry = new URL(`./${name}.ts`, here).href;
    const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
    return new Worker(boot, { eval: true, workerData });
  }
  return new Worker(new URL(`./${name}.js`, here), { workerData });
}
