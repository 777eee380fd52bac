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
 * Why not a worker thread for the parsing: measured here, a worker (its own V8
 * isolate and wasm instance) takes 0.3–0.6 s to start and adds 60–95 MB of RSS
 * per compile, against a 1 s reload promise and a 200 MB budget; the stall
 * budget is met without it.
 */
import {
  addPolicy,
  assemblePolicySet,
  checkSchema,
  compilePolicyText,
  parseEntities,
  policyTextsInSourceOrder,
  PolicySetError,
  refuseViolations,
  schemaViolations,
  splitPolicyFile,
  leanEntityStore,
  type CompiledPolicy,
  type CompiledPolicySet,
} from './compile.js';
import { RESOURCE_TYPE } from './cedar-request.js';
import type { PolicyJson } from './cedar-wasm.js';
import type { PolicyFile, PolicySetSource } from './policy-set-source.js';
import { groupStatements, splitStatements } from './policy-text.js';
import { analysePolicies, unionOfReads, type ReadSet } from './projection.js';
import { scopeOfPolicy, type ChunkPlan, type PolicyScope, type ResourceRef, type SlicePlan } from './slicing.js';

/** Yield to the event loop once a step has held it this long. */
export const STEP_BUDGET_MS = 2;
/** Text handed to Cedar's splitter at once (~25 typical policies; ~1–3 ms). */
export const SPLIT_PIECE_CHARS = 8 * 1024;
/** Policies validated per call (each call also parses the schema). */
export const VALIDATE_BATCH = 8;

export interface ChunkedCompileResult {
  set: CompiledPolicySet;
  /** Longest single step (ms, wall clock): the most a request waited behind this compile. */
  longestStepMs: number;
  /** Which phase that step belonged to (parse, validate, entities, plan, preparse, remember). */
  longestStepPhase: string;
  /** Steps taken (event-loop turns given back). */
  steps: number;
}

const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export async function compilePolicySetInChunks(source: PolicySetSource): Promise<ChunkedCompileResult> {
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
  let order = 0;
  for (const file of source.policies) {
    const texts = await splitFileInSteps(file, checkpoint);
    for (let n = 0; n < texts.length; n++) {
      const p = compilePolicyText(texts[n], file.name, n, order++);
      readsOf.set(p.id, analysePolicies([p]));
      scopes.set(p.id, scopeOfPolicy(p));
      addPolicy(policies, withJsonKeptAsText(p));
      await checkpoint();
    }
  }

  // 2. Schema validation, a few policies per call (validation is per policy).
  if (source.schema !== undefined) {
    phase = 'validate';
    checkSchema(source.schema);
    await checkpoint();
    const all = [...policies.values()];
    const violations: string[] = [];
    for (let i = 0; i < all.length; i += VALIDATE_BATCH) {
      violations.push(...schemaViolations(source.schema, all.slice(i, i + VALIDATE_BATCH)));
      await checkpoint();
    }
    refuseViolations(violations);
  }

  // 3. Entities and the slice index (no Cedar store side effects yet).
  phase = 'entities';
  const entities = parseEntities(source.entities, source.schema);
  await checkpoint();
  const leanEntities = leanEntityStore(entities, unionOfReads(readsOf.values()));
  await checkpoint();
  const set = assemblePolicySet(source, policies, entities, { readsOf, scopes, leanEntities });
  await checkpoint();

  // 4. Preparse the slices of every (action, resource) pair the policies name, each distinct chunk once.
  try {
    phase = 'plan';
    const plans: Array<[string, ResourceRef, SlicePlan]> = [];
    const missing = new Map<string, ChunkPlan>();
    for (const [action, resource] of set.slices.knownPairs(RESOURCE_TYPE)) {
      const plan = set.slices.plan(action, resource);
      plans.push([action, resource, plan]);
      for (const c of plan.chunks) if (!set.slices.hasChunk(c.signature)) missing.set(c.signature, c);
      await checkpoint();
    }
    phase = 'preparse';
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
  return { set, longestStepMs: longest, longestStepPhase: longestPhase, steps };
}

/**
 * The policy with its JSON form held as a string and parsed again on first
 * read. Slicing and projection already took what they need from it; kept as
 * objects, the JSON of 1,000 policies is ~100k long-lived objects, and copying
 * them out of the young generation made scavenges of 10–40 ms (measured) while
 * this compile runs beside live traffic.
 */
function withJsonKeptAsText({ json, ...rest }: CompiledPolicy): CompiledPolicy {
  const text = JSON.stringify(json);
  let parsed: PolicyJson | undefined;
  return Object.defineProperty(rest, 'json', { get: () => (parsed ??= JSON.parse(text) as PolicyJson), enumerable: true }) as CompiledPolicy;
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
