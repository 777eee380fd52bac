/**
 * Cedar's front end: everything a compile needs Cedar's wasm for. Split files
 * into policies (in source order), each policy's JSON form (`policyToJson`)
 * and annotations, the schema's parse and strict validation, Cedar's check of
 * entities.json, and the schema with resolved types. The answer is plain data
 * (`CedarFrontEnd`), so it is the same whether it was computed on this thread
 * (`readWithCedar`: CLI, tests) or in a compile worker process that exits afterwards
 * (compile-in-worker.ts: the server, whose serving thread then never loads
 * Cedar to compile). What is built from it (JS closures, slices, entity
 * stores) is compile.ts's `assembleSteps`, shared by both.
 *
 * A refusal throws `PolicySetError` with notes naming file and line, checked
 * in this order: parse and annotations (file by file), schema, entities.
 */
import { cedar, type EntityJson, type DetailedError, type PolicyJson } from './cedar-wasm.js';
import { AnnotationError, parseAnnotations, type PolicyAnnotations } from './annotations.js';
import type { CompiledPolicy } from './compiled-policy.js';
import type { PolicyFile, PolicySetSource } from './policy-set-source.js';
import { cedarErrorsIn, cedarErrorText, formatCedarErrors, PolicySetError } from './policy-set-error.js';
import { resolvedSchemaJson } from './schema-entities.js';
import { noteAt, type SourceNote } from '../text/source-position.js';

/** What Cedar says about a bundle's policies, schema and entities: plain data. */
export interface CedarFrontEnd {
  /**
   * Every policy, in set order (files in order, policies in source order),
   * each as the JSON text of its `CompiledPolicy` (id, text, annotations and
   * its JSON form). Text, not objects: a structured clone of 1,000 policies
   * (~100k objects) is read back in one piece when the worker's message
   * arrives, 8–17 ms measured, which would hold the serving thread in one
   * long step; 1,000 strings copy flat and are parsed one policy per step.
   */
  policies: string[];
  /** The schema in Cedar's JSON form with resolved types (schema-entities.ts); absent without a schema. */
  resolvedSchema?: unknown;
}

/** Read a bundle with Cedar on this thread; throws `PolicySetError`. */
export function readWithCedar(source: PolicySetSource): CedarFrontEnd {
  const policies = parsePolicies(source);
  if (source.schema !== undefined) validateAgainstSchema(source.schema, policies, source.policies);
  checkEntities(source.entities, source.schema, source.entitiesText);
  let resolvedSchema: unknown;
  if (source.schema !== undefined) {
    try {
      resolvedSchema = resolvedSchemaJson(source.schema);
    } catch (err) {
      throw new PolicySetError((err as Error).message);
    }
  }
  return {
    policies: [...policies.values()].map((p) => JSON.stringify(p)),
    resolvedSchema,
  };
}

/**
 * Cedar's split of policy text, back in source order. `policySetTextToParts`
 * names the policies policy0, policy1, ... and returns them sorted by that
 * name as a string (policy0, policy1, policy10, policy11, ..., policy2, ...),
 * so a file of more than ten policies comes back shuffled; "first determining
 * policy" and `<file>#<n>` ids need the order the author wrote.
 */
function policyTextsInSourceOrder(
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
function splitPolicyFile(file: PolicyFile): string[] {
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
function annotationPlace(
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
function compilePolicyText(
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
  const json: PolicyJson = parsed.json;
  let annotations: PolicyAnnotations;
  try {
    annotations = parseAnnotations(json.annotations as Record<string, string> | undefined, where, json.effect, (a) =>
      annotationPlace(fileName, n, text, fileText, a),
    );
  } catch (err) {
    if (err instanceof AnnotationError) throw new PolicySetError(err.message);
    throw err;
  }
  const id = annotations.id ?? `${fileName}#${n}`;
  return { id, effect: json.effect, file: fileName, order, text, json, annotations };
}

/** Add a policy, refusing a second one with the same id. */
function addPolicy(policies: Map<string, CompiledPolicy>, p: CompiledPolicy): void {
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

export function checkSchema(schema: string): void {
  const parsedSchema = cedar.checkParseSchema(schema);
  if (parsedSchema.type === 'failure')
    throw new PolicySetError('schema.cedarschema is invalid', formatCedarErrors(parsedSchema.errors));
}

/** One schema validation error of one policy; `start`/`end` are offsets into the policy's text. */
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
