/**
 * Cedar's own reading of what a caller wrote (the context and the request's
 * entities, against the schema when the set has one), done before projection
 * can leave a part out: a request plain Cedar would refuse whole (a bad
 * `ip("...")`, a float, an attribute the schema does not declare) is refused
 * here too, even when no policy reads the bad part.
 *
 * The check is a Cedar call, about as costly as an evaluation, so its outcome
 * is remembered by the request's shape: everything Cedar's parsing looks at,
 * with the contents of strings left out where no string can fail (strings are
 * valid whatever they hold, except as entity type names, extension arguments,
 * and, with a schema, where the schema reads a string as an entity or an
 * extension value: those are kept). Requests of one shape parse alike.
 */
import { createHash } from 'node:crypto';
import { cedar, type CedarValueJson, type EntityJson } from './cedar-wasm.js';
import type { CompiledPolicySet } from './compile.js';
import { formatCedarErrors } from './compile.js';
import { EvaluationError } from './evaluate.js';
import type { EntityRef } from './slicing.js';

/** Shapes remembered per set; past this the memo starts over (answers stay exact, only slower). */
export const MAX_REMEMBERED_SHAPES = 10_000;

interface CheckedRequest {
  principal: EntityRef;
  action: EntityRef;
  resource: EntityRef;
  context: Record<string, CedarValueJson>;
  entities?: EntityJson[];
}

/** An empty policy set: a call against it only parses the request. */
const EMPTY_PSET_ID = 'authz-request-check';
let emptyPsetReady = false;
/** Schemas preparsed for request checks, by text (equal schemas across reloads share one). */
const preparsedSchemas = new Map<string, string>();
const memo = new WeakMap<CompiledPolicySet, Map<string, string | null>>();

/** Throws `EvaluationError` with Cedar's message when plain Cedar would refuse this request. */
export function checkRequestValues(set: CompiledPolicySet, req: CheckedRequest): void {
  const shape = requestShape(req, set);
  let seen = memo.get(set);
  if (!seen) memo.set(set, (seen = new Map()));
  let outcome = seen.get(shape);
  if (outcome === undefined) {
    outcome = cedarCheck(set, req);
    if (seen.size >= MAX_REMEMBERED_SHAPES) seen.clear();
    seen.set(shape, outcome);
  }
  if (outcome !== null) throw new EvaluationError(outcome);
}

/** Cedar's answer: null when it accepts the request, else its message. */
function cedarCheck(set: CompiledPolicySet, req: CheckedRequest): string | null {
  if (!emptyPsetReady) {
    const p = cedar.preparsePolicySet(EMPTY_PSET_ID, { staticPolicies: {} });
    if (p.type === 'failure') return formatCedarErrors(p.errors).join('; ');
    emptyPsetReady = true;
  }
  const schema = set.schemaEntities;
  let schemaName: string | undefined;
  if (schema) {
    schemaName = preparsedSchemas.get(schema.schemaText);
    if (!schemaName) {
      schemaName = `authz-schema-${createHash('sha256').update(schema.schemaText).digest('hex').slice(0, 24)}`;
      const answer = cedar.preparseSchema(schemaName, schema.schemaText);
      if (answer.type === 'failure') return `schema: ${formatCedarErrors(answer.errors).join('; ')}`;
      preparsedSchemas.set(schema.schemaText, schemaName);
    }
  }
  const answer = cedar.statefulIsAuthorized({
    principal: req.principal,
    action: req.action,
    resource: req.resource,
    context: req.context,
    entities: req.entities ?? [],
    preparsedPolicySetId: EMPTY_PSET_ID,
    ...(schemaName ? { preparsedSchemaName: schemaName, validateRequest: false } : {}),
  });
  return answer.type === 'failure' ? formatCedarErrors(answer.errors).join('; ') : null;
}

/**
 * What Cedar's parsing of this request depends on. The uid types and the
 * action are kept (with a schema, the action must be declared and picks the
 * context type); request entities are kept whole (they are few, and with a
 * schema any of their strings may be typed); in the context, a string's
 * content is left out where it can only be read as a string: anywhere without
 * a schema, where the action's context type says String with one (a schema may
 * type a string as an entity or an extension, e.g. `"10.0.0.1"` as an ipaddr).
 */
export function requestShape(req: CheckedRequest, set: CompiledPolicySet): string {
  const parts: string[] = [JSON.stringify([req.principal.type, req.action.type, req.action.id, req.resource.type])];
  const schema = set.schemaEntities;
  parts.push(
    schema ? (schema.contextShape(req.action, req.context) ?? JSON.stringify(req.context)) : shapeOf(req.context),
  );
  if (req.entities && req.entities.length > 0) parts.push(JSON.stringify(req.entities));
  return parts.join('\n');
}

/** A value's shape, without a schema: types, keys, escapes whole, string contents left out. */
function shapeOf(v: unknown): string {
  if (typeof v === 'string') return 's';
  if (typeof v === 'boolean') return 'b';
  // Cedar's Long is a 64-bit integer: anything else (a fraction, a value past 2^53) is kept as it is.
  if (typeof v === 'number') return Number.isSafeInteger(v) ? 'i' : `n${String(v)}`;
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'u';
  if (Array.isArray(v)) return `[${v.map(shapeOf).join(',')}]`;
  const rec = v as Record<string, unknown>;
  // Escapes (`__extn`, `__entity`, `__expr`) are read by Cedar in full: keep them whole.
  if ('__extn' in rec || '__expr' in rec) return `X${JSON.stringify(rec)}`;
  if ('__entity' in rec) {
    const e = rec.__entity as Record<string, unknown> | null;
    const idShape = e && typeof e === 'object' && typeof e.id === 'string' ? { ...e, id: '' } : e;
    return `E${JSON.stringify({ ...rec, __entity: idShape })}`;
  }
  const keys = Object.keys(rec);
  return `{${keys.map((k) => `${JSON.stringify(k)}:${shapeOf(rec[k])}`).join(',')}}`;
}
