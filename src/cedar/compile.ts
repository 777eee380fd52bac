/**
 * Compile a policy set once, off the request path: split files into policies,
 * read annotations, validate against the schema, index entities, and preparse
 * into Cedar's thread-local store. The result is one immutable object; a
 * failure throws `PolicySetError` and the caller keeps its previous set.
 */
import { cedar, type EntityJson, type DetailedError, type PolicyJson } from './cedar-wasm.js';
import { AnnotationError, parseAnnotations, type PolicyAnnotations } from './annotations.js';
import { EntityStore } from './entity-store.js';
import type { PolicySetSource } from './policy-set-source.js';
import { DEFAULT_BUNDLE_SETTINGS, type BundleSettings } from '../bundle/bundle-settings.js';
import { IpListError, IpListIndex } from '../context/ip-lists.js';
import { DEFAULT_TIMEZONE, isValidTimezone, LocalTimeZone } from '../context/time-fields.js';

export interface CompiledPolicy {
  id: string;
  effect: 'permit' | 'forbid';
  file: string;
  /** Position in the set; "first determining policy" means lowest order. */
  order: number;
  text: string;
  json: PolicyJson;
  annotations: PolicyAnnotations;
}

export interface CompiledPolicySet {
  readonly version: string;
  /** Id under which the enforced policies are preparsed in Cedar's store. */
  readonly psetId: string;
  /**
   * Id of a second preparsed set holding the enforced policies plus the
   * `@shadow` ones; absent when the set has no shadow policy. Evaluating both
   * tells whether the shadow policies would change a decision.
   */
  readonly shadowPsetId?: string;
  readonly policies: ReadonlyMap<string, CompiledPolicy>;
  readonly entities: EntityStore;
  readonly hasSchema: boolean;
  readonly compiledAt: Date;
  /** bundle.yaml settings (mode, enforcement, timezone, rate limits). */
  readonly settings: BundleSettings;
  /** IP lists for context.source.lists (empty when the bundle has none). */
  readonly ipLists?: IpListIndex;
  /** Timezone of context.hour / context.weekday (UTC when absent). */
  readonly timeZone?: LocalTimeZone;
}

export class PolicySetError extends Error {
  constructor(message: string, readonly details: string[] = []) {
    super(details.length ? `${message}: ${details.join('; ')}` : message);
  }
}

let psetCounter = 0;

export function formatCedarErrors(errors: DetailedError[]): string[] {
  return errors.map((e) => (e.help ? `${e.message} (${e.help})` : e.message));
}

export interface ParsedPolicies {
  policies: Map<string, CompiledPolicy>;
}

/** Split and annotate every policy file; no Cedar store side effects. */
export function parsePolicies(source: PolicySetSource): Map<string, CompiledPolicy> {
  const policies = new Map<string, CompiledPolicy>();
  let order = 0;
  for (const file of source.policies) {
    const parts = cedar.policySetTextToParts(file.text);
    if (parts.type === 'failure') throw new PolicySetError(`${file.name}: Cedar parse error`, formatCedarErrors(parts.errors));
    if (parts.policy_templates.length > 0) {
      throw new PolicySetError(`${file.name}: policy templates are not supported; write static policies`);
    }
    parts.policies.forEach((text, n) => {
      const where = `${file.name} policy #${n}`;
      const parsed = cedar.policyToJson(text);
      if (parsed.type === 'failure') throw new PolicySetError(`${where}: Cedar parse error`, formatCedarErrors(parsed.errors));
      let annotations: PolicyAnnotations;
      try {
        annotations = parseAnnotations(parsed.json.annotations as Record<string, string> | undefined, where);
      } catch (err) {
        if (err instanceof AnnotationError) throw new PolicySetError(err.message);
        throw err;
      }
      const id = annotations.id ?? `${file.name}#${n}`;
      const dup = policies.get(id);
      if (dup) throw new PolicySetError(`policy id "${id}" is used twice (${dup.file} and ${file.name})`);
      policies.set(id, { id, effect: parsed.json.effect, file: file.name, order: order++, text, json: parsed.json, annotations });
    });
  }
  return policies;
}

export function parseEntities(raw: unknown, schema?: string): EntityStore {
  if (raw === undefined) return new EntityStore([]);
  if (!Array.isArray(raw)) throw new PolicySetError('entities.json must be a JSON array of entities');
  const check = cedar.checkParseEntities({ entities: raw as EntityJson[], schema: schema ?? null });
  if (check.type === 'failure') throw new PolicySetError('entities.json is invalid', formatCedarErrors(check.errors));
  try {
    return new EntityStore(raw as EntityJson[]);
  } catch (err) {
    throw new PolicySetError((err as Error).message);
  }
}

export function validateAgainstSchema(schema: string, policies: Map<string, CompiledPolicy>): void {
  const parsedSchema = cedar.checkParseSchema(schema);
  if (parsedSchema.type === 'failure') throw new PolicySetError('schema.cedarschema is invalid', formatCedarErrors(parsedSchema.errors));
  const staticPolicies: Record<string, string> = {};
  for (const p of policies.values()) staticPolicies[p.id] = p.text;
  const answer = cedar.validate({ schema, policies: { staticPolicies }, validationSettings: { mode: 'strict' } });
  if (answer.type === 'failure') throw new PolicySetError('schema validation failed', formatCedarErrors(answer.errors));
  if (answer.validationErrors.length > 0) {
    throw new PolicySetError(
      'policies do not validate against schema.cedarschema',
      answer.validationErrors.map((e) => `${e.policyId}: ${e.error.message}`),
    );
  }
}

/** Preparse a group of policies under a fresh id; returns the id. */
export function preparse(policies: Iterable<CompiledPolicy>): string {
  const staticPolicies: Record<string, string> = {};
  for (const p of policies) staticPolicies[p.id] = p.text;
  const psetId = `pset-${++psetCounter}`;
  const answer = cedar.preparsePolicySet(psetId, { staticPolicies });
  if (answer.type === 'failure') throw new PolicySetError('Cedar refused the policy set', formatCedarErrors(answer.errors));
  return psetId;
}

export function compileIpLists(source: PolicySetSource): IpListIndex {
  try {
    return IpListIndex.compile(source.lists ?? []);
  } catch (err) {
    if (err instanceof IpListError) throw new PolicySetError(err.message);
    throw err;
  }
}

export function compileTimeZone(source: PolicySetSource): LocalTimeZone {
  // bundle.yaml's schema already refused a bad zone; this guards sources built in code.
  const tz = source.settings?.timezone ?? DEFAULT_TIMEZONE;
  if (!isValidTimezone(tz)) throw new PolicySetError(`bundle.yaml: timezone "${tz}" is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)`);
  return new LocalTimeZone(tz);
}

export function compilePolicySet(source: PolicySetSource): CompiledPolicySet {
  const policies = parsePolicies(source);
  if (source.schema !== undefined) validateAgainstSchema(source.schema, policies);
  const entities = parseEntities(source.entities, source.schema);
  const ipLists = compileIpLists(source);
  const timeZone = compileTimeZone(source);
  // @shadow policies are evaluated beside the set, never in it.
  const enforced = [...policies.values()].filter((p) => !p.annotations.shadow);
  const psetId = preparse(enforced);
  const shadowPsetId = enforced.length < policies.size ? preparse(policies.values()) : undefined;
  return Object.freeze({
    version: source.version,
    psetId,
    ...(shadowPsetId ? { shadowPsetId } : {}),
    policies,
    entities,
    hasSchema: source.schema !== undefined,
    compiledAt: new Date(),
    settings: source.settings ?? DEFAULT_BUNDLE_SETTINGS,
    ipLists,
    timeZone,
  });
}
