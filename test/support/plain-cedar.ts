/**
 * The reference every shortcut is held to: plain Cedar, with every policy of
 * the set, every entity and the whole context, entities parsed against the
 * schema when there is one. Nothing of our pipeline is used except the policy
 * ids (Cedar's split of the files, named `@id` or `<file>#<n>`).
 */
import { cedar, type CedarValueJson, type EntityJson } from '../../src/cedar/cedar-wasm.js';
import type { CompiledPolicySet } from '../../src/cedar/compile.js';

export interface PlainRequest {
  principal: { type: string; id: string };
  action: { type: string; id: string };
  resource: { type: string; id: string };
  context: Record<string, CedarValueJson>;
  entities: EntityJson[];
}

export interface PlainAnswer {
  decision: 'allow' | 'deny';
  determining: string[];
  /** Ids of the policies that errored, sorted. */
  erroring: string[];
  /** Set when Cedar refused the whole request. */
  failure?: string;
}

/** Enforced (non-@shadow) policies of a set, by id. */
export function enforcedPolicyTexts(set: CompiledPolicySet): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of set.policies.values()) if (!p.annotations.shadow) out[p.id] = p.text;
  return out;
}

/** Every policy of a set, @shadow ones included, by id in set order: the reference for shadow evaluation. */
export function allPolicyTextsOf(set: CompiledPolicySet): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of [...set.policies.values()].sort((a, b) => a.order - b.order)) out[p.id] = p.text;
  return out;
}

/** One-off: parse everything on this call. */
export function plainIsAuthorized(policies: Record<string, string>, req: PlainRequest, schema?: string): PlainAnswer {
  const answer = cedar.isAuthorized({
    principal: req.principal,
    action: req.action,
    resource: req.resource,
    context: req.context,
    entities: req.entities,
    policies: { staticPolicies: policies },
    ...(schema !== undefined ? { schema, validateRequest: false } : {}),
  });
  return toPlainAnswer(answer, policies);
}

let nextId = 0;
const schemaNames = new Map<string, string>();

/**
 * A reference preparsed once (policies and schema) for many requests: the same
 * Cedar evaluation, parsed once. `slot` re-uses one preparsed id (preparsing an
 * id again replaces it), so a long run does not fill Cedar's store.
 */
export class PlainCedar {
  private readonly psetId: string;
  private readonly schemaName?: string;

  constructor(
    private readonly policies: Record<string, string>,
    schema?: string,
    slot?: string,
  ) {
    this.psetId = slot ?? `plain-reference-${nextId++}`;
    const p = cedar.preparsePolicySet(this.psetId, { staticPolicies: policies });
    if (p.type === 'failure')
      throw new Error(`reference refused the policies: ${p.errors.map((e) => e.message).join('; ')}`);
    if (schema !== undefined) {
      this.schemaName = schemaNames.get(schema);
      if (!this.schemaName) {
        this.schemaName = `plain-reference-schema-${schemaNames.size}`;
        const s = cedar.preparseSchema(this.schemaName, schema);
        if (s.type === 'failure')
          throw new Error(`reference refused the schema: ${s.errors.map((e) => e.message).join('; ')}`);
        schemaNames.set(schema, this.schemaName);
      }
    }
  }

  decide(req: PlainRequest): PlainAnswer {
    const answer = cedar.statefulIsAuthorized({
      principal: req.principal,
      action: req.action,
      resource: req.resource,
      context: req.context,
      entities: req.entities,
      preparsedPolicySetId: this.psetId,
      ...(this.schemaName ? { preparsedSchemaName: this.schemaName, validateRequest: false } : {}),
    });
    return toPlainAnswer(answer, this.policies);
  }
}

function toPlainAnswer(answer: ReturnType<typeof cedar.isAuthorized>, policies: Record<string, string>): PlainAnswer {
  if (answer.type === 'failure')
    return { decision: 'deny', determining: [], erroring: [], failure: answer.errors.map((e) => e.message).join('; ') };
  const order = Object.keys(policies);
  const byOrder = (a: string, b: string) => order.indexOf(a) - order.indexOf(b);
  const { decision, diagnostics } = answer.response;
  return {
    decision,
    determining: [...diagnostics.reason].sort(byOrder),
    erroring: [...new Set(diagnostics.errors.map((e) => e.policyId))].sort(),
  };
}

/** Request entities over the bundle's, as "the whole input": one uid in both gets the union (mergeEntity's rule, written out again). */
export function mergeEntityLists(bundle: EntityJson[], request: EntityJson[]): EntityJson[] {
  const key = (e: EntityJson) => {
    const u = ('__entity' in e.uid ? e.uid.__entity : e.uid) as { type: string; id: string };
    return `${u.type}\u0000${u.id}`;
  };
  const out = new Map<string, EntityJson>();
  for (const e of bundle) out.set(key(e), e);
  for (const e of request) {
    const k = key(e);
    const b = out.get(k);
    if (!b) {
      out.set(k, e);
      continue;
    }
    const parents = [...(b.parents ?? [])];
    for (const p of e.parents ?? []) if (!parents.some((q) => JSON.stringify(q) === JSON.stringify(p))) parents.push(p);
    const tags = b.tags || e.tags ? { ...b.tags, ...e.tags } : undefined;
    out.set(k, { uid: e.uid, attrs: { ...b.attrs, ...e.attrs }, parents, ...(tags ? { tags } : {}) });
  }
  return [...out.values()];
}
