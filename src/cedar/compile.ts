/**
 * Compile a policy set once, off the request path. Cedar's front end
 * (cedar-front-end.ts: split, `policyToJson`, annotations, schema validation,
 * entities check) answers plain data, read on this thread or in a worker;
 * `assembleSteps` builds the set from it with JS only: each policy's reads,
 * scope and JS closures, the entity stores, the slice index. The result is one
 * immutable object; a failure throws `PolicySetError` and the caller keeps its
 * previous set. `compilePolicySet` does it all here in one go (CLI, tests);
 * compile-async.ts runs the front end in a worker and the assembly in steps.
 */
import type { EntityJson, PolicyJson } from './cedar-wasm.js';
import { cedar } from './cedar-wasm.js';
import type { CompiledPolicy } from './compiled-policy.js';
import { EntityStore } from './entity-store.js';
import type { PolicySetSource } from './policy-set-source.js';
import { projectEntity } from './projection.js';
import { analysePolicies, emptyReadSet, mergeReadsInto, type ReadSet } from './reads.js';
import { acquirePsetId, releasePsetIds } from './pset-ids.js';
import {
  scopeOfPolicy,
  SliceIndex,
  SliceRetiredError,
  type ChunkPlan,
  type EntityRef,
  type PolicyScope,
  type ResourceRef,
  type SlicePlan,
} from './slicing.js';
import { builtinActionEntities, RESOURCE_TYPE } from './action-hierarchy.js';
import { SchemaEntities } from './schema-entities.js';
import { defaultEngine, type EngineName } from './js/engine-choice.js';
import { JsPolicySet } from './js/js-policy-set.js';
import { readWithCedar, type CedarFrontEnd } from './cedar-front-end.js';
import { formatCedarErrors, PolicySetError } from './policy-set-error.js';

export { PolicySetError, formatCedarErrors, cedarErrorsIn } from './policy-set-error.js';
export {
  parsePolicies,
  schemaViolations,
  checkEntities,
  checkSchema,
  refuseViolations,
  validateAgainstSchema,
  type SchemaViolation,
} from './cedar-front-end.js';

export type { CompiledPolicy } from './compiled-policy.js';

export interface CompiledPolicySet {
  readonly version: string;
  /**
   * Id under which the whole set is preparsed in Cedar's store. Preparsed on
   * first use: requests evaluate slices (`slices`), and one preparse of 1,000
   * policies blocks the thread for ~0.3–0.5 s, so nothing on the request or
   * swap path reads this.
   */
  readonly psetId: string;
  /**
   * Id of a second preparsed set holding the enforced policies plus the
   * `@shadow` ones; absent when the set has no shadow policy. Evaluating both
   * tells whether the shadow policies would change a decision.
   */
  readonly shadowPsetId: string | undefined;
  /** Whether any policy is `@shadow` (reading shadowPsetId preparses them on first use). */
  readonly hasShadowPolicies: boolean;
  /**
   * The `@shadow` policies in set order, one array per set (the JS engine
   * memoizes its compiled form of a list by the array: engine.ts
   * `decideWithShadowPolicies`).
   */
  readonly shadowPolicies: readonly CompiledPolicy[];
  readonly policies: ReadonlyMap<string, CompiledPolicy>;
  /**
   * The bundle's entities: entities.json (read against the schema when there is
   * one, see schema-entities.ts) plus the schema's actions. What `authz eval`
   * requests evaluate against.
   */
  readonly entities: EntityStore;
  /** `entities` plus the server's action groups (GET in Action::"read", ...): what Envoy checks evaluate against. */
  readonly envoyEntities: EntityStore;
  readonly hasSchema: boolean;
  readonly compiledAt: Date;
  /** Policies indexed by action/resource scope, preparsed as small sets (slicing.ts). */
  readonly slices: SliceIndex;
  /** `entities` with only the attributes some policy reads: what requests carry. */
  readonly leanEntities: EntityStore;
  /** `envoyEntities` with only the attributes some policy reads. */
  readonly leanEnvoyEntities: EntityStore;
  /** The schema's entity reader, when the bundle has a schema (request entities of `authz eval` are read with it too). */
  readonly schemaEntities?: SchemaEntities;
  /** Which evaluator decides requests (engine-choice.ts). */
  readonly engine: EngineName;
  /** The enforced policies compiled to JS (engine `js`); slices with a policy it refused are decided by wasm. */
  readonly js?: JsPolicySet;
  /** Called once the set is replaced: frees its preparsed sets for reuse. It must not be evaluated afterwards. */
  retire(): void;
}

export interface CompileOptions {
  /** Defaults to the process's engine (`--engine`). */
  engine?: EngineName;
  /** Limits of the compile worker (compile-async.ts only). */
  worker?: CompileWorkerLimits;
}

/** Bounds on the compile worker (a child process) that runs Cedar's front end for the server's compile. */
export interface CompileWorkerLimits {
  /** Wall-clock limit; past it the worker is stopped and the compile refused (default COMPILE_WORKER_TIME_LIMIT_MS). */
  timeLimitMs?: number;
  /** V8 heap limit of the worker in MB (default: Node's); reaching it fails the compile, not the server. */
  maxHeapMb?: number;
}

/** Preparse a group of policies under a fresh id; returns the id. */
export function preparse(policies: Iterable<CompiledPolicy>): string {
  const staticPolicies: Record<string, string> = {};
  for (const p of policies) staticPolicies[p.id] = p.text;
  const psetId = acquirePsetId();
  const answer = cedar.preparsePolicySet(psetId, { staticPolicies });
  if (answer.type === 'failure') {
    releasePsetIds([psetId]);
    throw new PolicySetError('Cedar refused the policy set', formatCedarErrors(answer.errors));
  }
  return psetId;
}

/** Phases of the assembly, named by each step it yields after. */
export type AssemblyPhase = 'policies' | 'entities' | 'index' | 'plan' | 'preparse' | 'remember';

/**
 * Build the set from Cedar's front-end answer, with JS only unless the engine
 * is wasm and `warm` asks for the slices to be preparsed. A generator: it
 * yields after each small piece of work (one policy, one slice plan, one
 * preparse chunk), so the stepped compile can give the event loop back between
 * pieces and the one-shot compile just runs it to the end. `warm` plans every
 * (action, resource) pair the policies name beforehand, so the first requests
 * find their slice ready.
 */
export function* assembleSteps(
  source: PolicySetSource,
  frontEnd: CedarFrontEnd,
  options: CompileOptions & { warm?: boolean } = {},
): Generator<AssemblyPhase, CompiledPolicySet> {
  const engine = options.engine ?? defaultEngine();
  // The JS engine compiles each policy (@shadow ones too, see engine.ts decideWithShadowPolicies) while its JSON form is at hand.
  const js = engine === 'js' ? new JsPolicySet() : undefined;
  const policies = new Map<string, CompiledPolicy>();
  const readsOf = new Map<string, ReadSet>();
  const scopes = new Map<string, PolicyScope>();
  const allReads = emptyReadSet();
  for (const record of frontEnd.policies) {
    const parsed = JSON.parse(record) as CompiledPolicy;
    const reads = analysePolicies([parsed]);
    readsOf.set(parsed.id, reads);
    mergeReadsInto(allReads, reads);
    scopes.set(parsed.id, scopeOfPolicy(parsed));
    if (js) js.add(parsed);
    policies.set(parsed.id, withJsonOnDemand(parsed, record));
    yield 'policies';
  }
  const schemaEntities =
    source.schema === undefined ? undefined : new SchemaEntities(source.schema, frontEnd.resolvedSchema);
  const entities = entityStoreOf(source.entities, schemaEntities);
  yield 'entities';
  // @shadow policies are evaluated beside the set (shadowPsetId), never in its slices.
  const enforced = [...policies.values()].filter((p) => !p.annotations.shadow);
  const envoyEntities = entities.withEntities(builtinActionEntities());
  yield 'entities';
  // Slicing judges `in` against the larger hierarchy: a superset of ancestors only keeps more policies, which is exact for both.
  // With the JS engine, wasm preparses a slice only when that slice falls back to it.
  const slices = new SliceIndex(
    enforced,
    envoyEntities,
    { readsOf, scopes, allReads },
    { lazyPreparse: engine === 'js' },
  );
  yield 'index';
  const leanEntities = leanEntityStore(entities, slices.allReads);
  yield 'entities';
  const leanEnvoyEntities = leanEntityStore(envoyEntities, slices.allReads);
  yield 'entities';
  const set = frozenSet(source, {
    policies,
    enforced,
    entities,
    envoyEntities,
    leanEntities,
    leanEnvoyEntities,
    slices,
    schemaEntities,
    engine,
    js,
  });
  if (!options.warm) return set;
  try {
    const plans: Array<[EntityRef, ResourceRef, SlicePlan]> = [];
    const missing = new Map<string, ChunkPlan>();
    for (const [action, resource] of set.slices.knownPairs(RESOURCE_TYPE)) {
      const plan = set.slices.plan(action, resource);
      plans.push([action, resource, plan]);
      for (const c of plan.chunks) if (!set.slices.hasChunk(c.signature)) missing.set(c.signature, c);
      yield 'plan';
    }
    // The JS engine preparses a slice only if it falls back to wasm (slicing.ts `lazyPreparse`).
    if (engine === 'wasm') {
      for (const chunk of missing.values()) {
        set.slices.preparseChunk(chunk);
        yield 'preparse';
      }
    }
    for (const [action, resource, plan] of plans) {
      set.slices.sliceFor(action, resource, plan);
      yield 'remember';
    }
  } catch (err) {
    set.retire();
    throw err instanceof PolicySetError ? err : new PolicySetError((err as Error).message);
  }
  return set;
}

/** Run a stepwise computation to its end on this thread. */
export function runToEnd<T>(steps: Generator<unknown, T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * The policy without its JSON form, which is read again from the policy's
 * record (its JSON text, as the front end gave it) on first use, and kept from
 * then on. Slicing, projection and the JS engine take what they need from it
 * while compiling; kept as objects, the JSON of 1,000 policies is ~100k
 * long-lived objects (the records are ~0.9 MB of text), and copying them out
 * of the young generation made scavenges of 10–40 ms (measured) while a
 * compile ran beside live traffic. Reading the text needs no Cedar.
 */
function withJsonOnDemand({ json: _json, ...rest }: CompiledPolicy, record: string): CompiledPolicy {
  let parsed: PolicyJson | undefined;
  return Object.defineProperty(rest, 'json', {
    get: (): PolicyJson => (parsed ??= (JSON.parse(record) as CompiledPolicy).json),
    enumerable: true,
  }) as CompiledPolicy;
}

/**
 * The store for entities Cedar accepted. With a schema, they are rewritten as
 * Cedar reads them against it, and the schema's actions are added (merged with
 * an entities.json entry of the same action).
 */
export function entityStoreOf(raw: unknown, schema?: SchemaEntities): EntityStore {
  const list = (raw ?? []) as EntityJson[];
  try {
    if (!schema) return new EntityStore(list);
    return new EntityStore(list.map((e) => schema.normalizeEntity(e))).withEntities(schema.actions);
  } catch (err) {
    throw new PolicySetError((err as Error).message);
  }
}

/** The parts of a compiled set, as `assembleSteps` builds them one step at a time. */
interface SetParts {
  policies: Map<string, CompiledPolicy>;
  enforced: CompiledPolicy[];
  entities: EntityStore;
  envoyEntities: EntityStore;
  leanEntities: EntityStore;
  leanEnvoyEntities: EntityStore;
  slices: SliceIndex;
  schemaEntities: SchemaEntities | undefined;
  engine: EngineName;
  js: JsPolicySet | undefined;
}

/** The immutable set; slices are preparsed on first use unless `assembleSteps` warmed them. */
function frozenSet(source: PolicySetSource, parts: SetParts): CompiledPolicySet {
  const { policies, enforced, slices } = parts;
  const shadowPolicies = [...policies.values()].filter((p) => p.annotations.shadow);
  const hasShadowPolicies = shadowPolicies.length > 0;
  let fullPsetId: string | undefined;
  let shadowPsetId: string | undefined;
  const checkLive = (): void => {
    if (slices.retired) throw new SliceRetiredError('this policy set was replaced; its preparsed sets are gone');
  };
  return Object.freeze({
    version: source.version,
    get psetId(): string {
      checkLive();
      return (fullPsetId ??= preparse(enforced));
    },
    hasShadowPolicies,
    shadowPolicies,
    get shadowPsetId(): string | undefined {
      if (!hasShadowPolicies) return undefined;
      checkLive();
      return (shadowPsetId ??= preparse(policies.values()));
    },
    policies,
    entities: parts.entities,
    envoyEntities: parts.envoyEntities,
    hasSchema: source.schema !== undefined,
    schemaEntities: parts.schemaEntities,
    compiledAt: new Date(),
    slices,
    leanEntities: parts.leanEntities,
    leanEnvoyEntities: parts.leanEnvoyEntities,
    engine: parts.engine,
    js: parts.js,
    retire(): void {
      slices.retire();
      releasePsetIds([fullPsetId, shadowPsetId].filter((id): id is string => id !== undefined));
      fullPsetId = undefined;
      shadowPsetId = undefined;
    },
  });
}

/** Static entities with only the attributes some policy reads (what requests carry). */
export function leanEntityStore(entities: EntityStore, reads: ReadSet): EntityStore {
  return new EntityStore(entities.all().map((e) => projectEntity(e, reads)));
}

/** Compile in one go on this thread (CLI, tests); throws `PolicySetError`. */
export function compilePolicySet(source: PolicySetSource, options: CompileOptions = {}): CompiledPolicySet {
  return runToEnd(assembleSteps(source, readWithCedar(source), options));
}
