/**
 * Compile a policy set once, off the request path: split files into policies,
 * read annotations, validate against the schema, index entities, and preparse
 * into Cedar's thread-local store. The result is one immutable object; a
 * failure throws `PolicySetError` and the caller keeps its previous set.
 */
import { cedar, type EntityJson, type DetailedError } from './cedar-wasm.js';
import { AnnotationError, parseAnnotations, type PolicyAnnotations } from './annotations.js';
import type { CompiledPolicy } from './compiled-policy.js';
import { EntityStore } from './entity-store.js';
import type { PolicyFile, PolicySetSource } from './policy-set-source.js';
import { projectEntity } from './projection.js';
import type { ReadSet } from './reads.js';
import { acquirePsetId, releasePsetIds } from './pset-ids.js';
import { SliceIndex, SliceRetiredError, type PolicyScope } from './slicing.js';
import { builtinActionEntities } from './action-hierarchy.js';
import { SchemaEntities } from './schema-entities.js';
import { distinctNotes, formatNoteLine, noteAt, type SourceNote } from '../text/source-position.js';
import { defaultEngine, type EngineName } from './js/engine-choice.js';
import { JsPolicySet } from './js/js-policy-set.js';

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
}

export class PolicySetError extends Error {
  /** Mistakes with a place in a file (each distinct one once, in file order); the CLI shows their lines. */
  readonly notes: SourceNote[];
  constructor(
    readonly summary: string,
    readonly details: string[] = [],
    notes: SourceNote[] = [],
  ) {
    const distinct = distinctNotes(notes);
    const parts = [...distinct.map(formatNoteLine), ...new Set(details)];
    super(parts.length ? `${summary}: ${parts.join('; ')}` : summary);
    this.notes = distinct;
  }
}

function cedarErrorText(e: DetailedError): string {
  const label = e.sourceLocations?.find((l) => l.label)?.label;
  return [e.message, label, e.help ? `(${e.help})` : undefined].filter(Boolean).join('; ').replace(/; \(/, ' (');
}

export function formatCedarErrors(errors: DetailedError[]): string[] {
  return errors.map(cedarErrorText);
}

/** Cedar errors with source spans as notes in `file` (spans are offsets into `text`, shifted by `offset`); the rest as plain details. */
export function cedarErrorsIn(
  file: string,
  text: string,
  errors: DetailedError[],
  offset = 0,
): { notes: SourceNote[]; details: string[] } {
  const notes: SourceNote[] = [];
  const details: string[] = [];
  for (const e of errors) {
    const at = e.sourceLocations?.[0];
    if (at) notes.push(noteAt(file, text, offset + at.start, offset + at.end, cedarErrorText(e)));
    else details.push(`${file}: ${cedarErrorText(e)}`);
  }
  return { notes, details };
}

/**
 * Cedar's split of policy text, back in source order. `policySetTextToParts`
 * names the policies policy0, policy1, ... and returns them sorted by that
 * name as a string (policy0, policy1, policy10, policy11, ..., policy2, ...),
 * so a file of more than ten policies comes back shuffled; "first determining
 * policy" and `<file>#<n>` ids need the order the author wrote.
 */
export function policyTextsInSourceOrder(
  text: string,
): { ok: true; texts: string[]; templates: number } | { ok: false; errors: DetailedError[] } {
  const parts = cedar.policySetTextToParts(text);
  if (parts.type === 'failure') return { ok: false, errors: parts.errors };
  const n = parts.policies.length;
  const byName = Array.from({ length: n }, (_, i) => i).sort((a, b) => (String(a) < String(b) ? -1 : 1));
  const texts = new Array<string>(n);
  byName.forEach((sourceIndex, k) => {
    texts[sourceIndex] = parts.policies[k];
  });
  return { ok: true, texts, templates: parts.policy_templates.length };
}

/** A file's policy texts, in source order; templates are refused. */
export function splitPolicyFile(file: PolicyFile): string[] {
  const parts = policyTextsInSourceOrder(file.text);
  if (!parts.ok) {
    const { notes, details } = cedarErrorsIn(file.name, file.text, parts.errors);
    throw new PolicySetError('Cedar parse error', details, notes);
  }
  if (parts.templates > 0) {
    throw new PolicySetError(`${file.name}: policy templates are not supported; write static policies`);
  }
  return parts.texts;
}

/**
 * Where an annotation is written, as `file:line (policy #n)`, so a refusal
 * points at the line to fix. Cedar's split keeps each policy's source text, so
 * the policy is found in its file and the annotation within the policy.
 */
export function annotationPlace(
  fileName: string,
  n: number,
  policyText: string,
  fileText: string | undefined,
  annotation: string,
): string {
  const at = fileText === undefined ? -1 : fileText.indexOf(policyText);
  if (at < 0) return `${fileName} policy #${n}`;
  const within = policyText.search(new RegExp(`@\\s*${annotation}\\b`));
  const lineOf = (text: string, end: number): number => text.slice(0, end).split('\n').length - 1;
  return `${fileName}:${1 + lineOf(fileText!, at) + (within < 0 ? 0 : lineOf(policyText, within))} (policy #${n})`;
}

/** One policy's text → its JSON form, annotations and id (`@id`, else `<file>#<n>`). */
export function compilePolicyText(
  text: string,
  fileName: string,
  n: number,
  order: number,
  fileText?: string,
): CompiledPolicy {
  const where = `${fileName} policy #${n}`;
  const parsed = cedar.policyToJson(text);
  if (parsed.type === 'failure')
    throw new PolicySetError(`${where}: Cedar parse error`, formatCedarErrors(parsed.errors));
  let annotations: PolicyAnnotations;
  try {
    annotations = parseAnnotations(
      parsed.json.annotations as Record<string, string> | undefined,
      where,
      parsed.json.effect,
      (a) => annotationPlace(fileName, n, text, fileText, a),
    );
  } catch (err) {
    if (err instanceof AnnotationError) throw new PolicySetError(err.message);
    throw err;
  }
  const id = annotations.id ?? `${fileName}#${n}`;
  return { id, effect: parsed.json.effect, file: fileName, order, text, json: parsed.json, annotations };
}

/** Add a policy, refusing a second one with the same id. */
export function addPolicy(policies: Map<string, CompiledPolicy>, p: CompiledPolicy): void {
  const dup = policies.get(p.id);
  if (dup) throw new PolicySetError(`policy id "${p.id}" is used twice (${dup.file} and ${p.file})`);
  policies.set(p.id, p);
}

/** Split and annotate every policy file; no Cedar store side effects. */
export function parsePolicies(source: PolicySetSource): Map<string, CompiledPolicy> {
  const policies = new Map<string, CompiledPolicy>();
  let order = 0;
  for (const file of source.policies) {
    splitPolicyFile(file).forEach((text, n) => {
      addPolicy(policies, compilePolicyText(text, file.name, n, order++, file.text));
    });
  }
  return policies;
}

export function parseEntities(raw: unknown, schema?: string, text?: string): EntityStore {
  checkEntities(raw, schema, text);
  return entityStoreOf(raw, schemaEntitiesOf(schema));
}

/** The schema's entity reader (undefined without a schema). */
export function schemaEntitiesOf(schema: string | undefined): SchemaEntities | undefined {
  if (schema === undefined) return undefined;
  try {
    return new SchemaEntities(schema);
  } catch (err) {
    throw new PolicySetError((err as Error).message);
  }
}

/** Cedar's check of entities.json (against the schema, when there is one); with the file's text, refusals name the entity's line. */
export function checkEntities(raw: unknown, schema?: string, text?: string): void {
  if (raw === undefined) return;
  if (!Array.isArray(raw)) throw new PolicySetError('entities.json must be a JSON array of entities');
  const check = cedar.checkParseEntities({ entities: raw as EntityJson[], schema: schema ?? null });
  if (check.type === 'failure') {
    const notes: SourceNote[] = [];
    const details: string[] = [];
    for (const message of formatCedarErrors(check.errors)) {
      const at = text === undefined ? -1 : entityOffset(text, message);
      if (at === -1) details.push(message);
      else notes.push(noteAt('entities.json', text!, at, undefined, message));
    }
    throw new PolicySetError('entities.json is invalid', details, notes);
  }
}

/** Where the entity a Cedar message names (`Type::"id"`) has its "id" in the file; -1 when not found. */
function entityOffset(text: string, message: string): number {
  const uid = /`(?:[A-Za-z_][A-Za-z0-9_]*::)+"((?:[^"\\]|\\.)*)"`/.exec(message);
  if (!uid) return -1;
  const id = JSON.stringify(JSON.parse(`"${uid[1]}"`) as string);
  const found = new RegExp(`"id"\\s*:\\s*${id.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`).exec(text);
  return found ? found.index : -1;
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

export function checkSchema(schema: string): void {
  const parsedSchema = cedar.checkParseSchema(schema);
  if (parsedSchema.type === 'failure')
    throw new PolicySetError('schema.cedarschema is invalid', formatCedarErrors(parsedSchema.errors));
}

/** One schema validation error of one policy; `start`/`end` are offsets into the policy's text. Plain data: it crosses from the schema worker. */
export interface SchemaViolation {
  policyId: string;
  message: string;
  start?: number;
  end?: number;
}

/** Validation errors of some policies. Validation is per policy, so a set can be checked in parts. */
export function schemaViolations(
  schema: string,
  policies: Iterable<Pick<CompiledPolicy, 'id' | 'text'>>,
): SchemaViolation[] {
  const staticPolicies: Record<string, string> = {};
  for (const p of policies) staticPolicies[p.id] = p.text;
  const answer = cedar.validate({ schema, policies: { staticPolicies }, validationSettings: { mode: 'strict' } });
  if (answer.type === 'failure') throw new PolicySetError('schema validation failed', formatCedarErrors(answer.errors));
  return answer.validationErrors.map((e) => {
    const at = e.error.sourceLocations?.[0];
    return { policyId: e.policyId, message: cedarErrorText(e.error), start: at?.start, end: at?.end };
  });
}

/**
 * Refuse the set when any policy fails validation, each error pointing at its
 * file and line: the policy's text is found in its file (it is a slice of it),
 * and Cedar's span is inside that text. Cedar reports some errors once per
 * action a policy applies to; they are told once.
 */
export function refuseViolations(
  violations: SchemaViolation[],
  policies: ReadonlyMap<string, Pick<CompiledPolicy, 'file' | 'text'>>,
  files: readonly PolicyFile[],
): void {
  if (violations.length === 0) return;
  const notes: SourceNote[] = [];
  const details: string[] = [];
  const fileText = new Map(files.map((f) => [f.name, f.text]));
  for (const v of violations) {
    const p = policies.get(v.policyId);
    const text = p ? fileText.get(p.file) : undefined;
    const base = p && text !== undefined ? text.indexOf(p.text) : -1;
    if (p && text !== undefined && base !== -1)
      notes.push(noteAt(p.file, text, base + (v.start ?? 0), base + (v.end ?? 1), v.message));
    else details.push(`${v.policyId}: ${v.message}`);
  }
  throw new PolicySetError('policies do not validate against schema.cedarschema', details, notes);
}

export function validateAgainstSchema(
  schema: string,
  policies: Map<string, CompiledPolicy>,
  files: readonly PolicyFile[] = [],
): void {
  checkSchema(schema);
  refuseViolations(schemaViolations(schema, policies.values()), policies, files);
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

/**
 * Put a compiled set together from parsed parts. Slices are preparsed on first
 * use; `compilePolicySetInChunks` (compile-async.ts) warms them beforehand.
 */
export function assemblePolicySet(
  source: PolicySetSource,
  policies: Map<string, CompiledPolicy>,
  entities: EntityStore,
  prepared?: {
    readsOf: ReadonlyMap<string, ReadSet>;
    scopes: ReadonlyMap<string, PolicyScope>;
    allReads: ReadSet;
    js?: JsPolicySet;
  },
  options: CompileOptions = {},
): CompiledPolicySet {
  const engine = options.engine ?? defaultEngine();
  // @shadow policies are evaluated beside the set (shadowPsetId), never in its slices.
  const enforced = [...policies.values()].filter((p) => !p.annotations.shadow);
  const hasShadowPolicies = enforced.length < policies.size;
  const envoyEntities = entities.withEntities(builtinActionEntities());
  // Slicing judges `in` against the larger hierarchy: a superset of ancestors only keeps more policies, which is exact for both.
  // The JS set holds the @shadow policies too (engine.ts decideWithShadowPolicies); slices name only enforced ones.
  const js = engine === 'js' ? (prepared?.js ?? JsPolicySet.compile(policies.values())) : undefined;
  // With the JS engine, wasm preparses a slice only when that slice falls back to it.
  const slices = new SliceIndex(enforced, envoyEntities, prepared, { lazyPreparse: engine === 'js' });
  const leanEntities = leanEntityStore(entities, slices.allReads);
  const leanEnvoyEntities = leanEntityStore(envoyEntities, slices.allReads);
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
    get shadowPsetId(): string | undefined {
      if (!hasShadowPolicies) return undefined;
      checkLive();
      return (shadowPsetId ??= preparse(policies.values()));
    },
    policies,
    entities,
    envoyEntities,
    hasSchema: source.schema !== undefined,
    schemaEntities: schemaEntitiesOf(source.schema),
    compiledAt: new Date(),
    slices,
    leanEntities,
    leanEnvoyEntities,
    engine,
    js,
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

export function compilePolicySet(source: PolicySetSource, options: CompileOptions = {}): CompiledPolicySet {
  const policies = parsePolicies(source);
  if (source.schema !== undefined) validateAgainstSchema(source.schema, policies, source.policies);
  const entities = parseEntities(source.entities, source.schema, source.entitiesText);
  return assemblePolicySet(source, policies, entities, undefined, options);
}
