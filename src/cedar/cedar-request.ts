/**
 * RequestModel → Cedar request (principal, action, resource, context, entities).
 * This is the contract policy authors write against; the README documents it.
 */
import type { RequestModel, PeerModel } from '../envoy/request-model.js';
import type { CedarValueJson, EntityJson } from './cedar-wasm.js';
import { actionEntities, CONNECT_ACTION } from './action-hierarchy.js';
import type { CompiledPolicySet } from './compile.js';
import { uidKey } from './entity-store.js';
import { workloadPrincipal, type PrincipalRef } from './principal.js';
import { contextFields, type ContextFields } from '../context/context-fields.js';
import { projectEntityAttrs, type ContextReads, type ReadSet } from './projection.js';
import { addBodyFields } from './body-context.js';

export interface CedarRequest {
  principal: { type: string; id: string };
  action: { type: string; id: string };
  resource: { type: string; id: string };
  context: Record<string, CedarValueJson>;
  entities: EntityJson[];
}

/** Every request's resource is a Service, named by the service the request is for. */
export const RESOURCE_TYPE = 'Service';
export const ACTION_TYPE = 'Action';

export function actionIdFor(input: RequestModel): string {
  return input.kind === 'network' ? CONNECT_ACTION : input.method;
}

export function ipValue(ip: string): CedarValueJson {
  return { __extn: { fn: 'ip', arg: ip } };
}

export function datetimeValue(ms: number): CedarValueJson {
  return { __extn: { fn: 'datetime', arg: new Date(ms).toISOString() } };
}

function peerRecord(p: PeerModel): Record<string, CedarValueJson> {
  const rec: Record<string, CedarValueJson> = { principal: p.principal };
  if (p.ip !== undefined) rec.ip = ipValue(p.ip);
  if (p.port !== undefined) rec.port = p.port;
  return rec;
}

/**
 * `fields` are the server-computed fields (lists, risk, load, hour, weekday;
 * see context/context-fields.ts). They are always present except `risk`, so a
 * policy never errors on a missing one: Cedar skips a forbid that errors, and
 * a missing field must not turn a deny into an allow.
 */
export function buildContext(input: RequestModel, fields?: ContextFields): Record<string, CedarValueJson> {
  const source = peerRecord(input.source);
  const ctx: Record<string, CedarValueJson> = {
    method: input.method,
    path: input.path,
    rawPath: input.rawPath,
    query: input.query,
    host: input.host,
    scheme: input.scheme,
    protocol: input.protocol,
    headers: input.headers,
    source,
    destination: peerRecord(input.destination),
    time: datetimeValue(input.timeMs),
    contextExtensions: input.contextExtensions,
  };
  if (fields) {
    source.lists = fields.sourceLists;
    ctx.load = fields.load;
    ctx.hour = fields.hour;
    ctx.weekday = fields.weekday;
    if (fields.risk !== undefined) ctx.risk = fields.risk;
  }
  return ctx;
}

/**
 * The whole context of a request against a set: Envoy's fields, the server's
 * fields, the set's mode, and the body fields. With `reads` (what the
 * evaluated slice can observe), body fields it cannot read are not computed.
 */
export function requestContext(
  input: RequestModel,
  set: CompiledPolicySet,
  fields: ContextFields = contextFields(input, set),
  reads?: ContextReads,
): Record<string, CedarValueJson> {
  const context = buildContext(input, fields);
  // bundle.yaml's mode, so policies can tighten in high-alert too.
  context.mode = set.settings.mode;
  addBodyFields(context, input.body, reads);
  return context;
}

/** Which of the request's own entities to send (with what they reach), and which attributes. */
export interface EntityNeeds {
  principal: boolean;
  resource: boolean;
  action: boolean;
  /** Attribute names kept on the principal's request-made attributes; undefined keeps all. */
  attrs?: ReadonlySet<string>;
}

export const ALL_ENTITIES: EntityNeeds = Object.freeze({ principal: true, resource: true, action: true });

/** What a slice's policies can observe (projection.ts): unknown reach means everything. */
export function entityNeedsOf(reads: ReadSet): EntityNeeds {
  const all = reads.allEntities;
  return { principal: all || reads.principalEntity, resource: all || reads.resourceEntity, action: all || reads.actionEntities, attrs: reads.entityAttrs };
}

/**
 * The request's own entities (principal, resource, action) merged with their
 * static definitions, plus every static entity they can reach.
 */
export function buildEntities(
  set: CompiledPolicySet,
  principal: PrincipalRef,
  actionId: string,
  service: string,
  needs: EntityNeeds = ALL_ENTITIES,
  store = set.entities,
): EntityJson[] {
  const out: EntityJson[] = [];
  const seen = new Set<string>();
  const push = (e: EntityJson, key: string): void => {
    if (seen.has(key)) return;
    seen.add(key);
    out.push(e);
  };
  const addWithClosure = (type: string, id: string, attrs: Record<string, CedarValueJson>, parents: { type: string; id: string }[]): void => {
    const key = uidKey(type, id);
    const stat = store.get(type, id);
    const merged: EntityJson = stat
      ? { uid: { type, id }, attrs: { ...stat.attrs, ...attrs }, parents: [...stat.parents, ...parents] }
      : { uid: { type, id }, attrs, parents };
    push(merged, key);
    for (const p of parents) pushStatic(p.type, p.id);
    for (const e of store.reachableFrom(key)) push(e, uidKey((e.uid as { type: string }).type, (e.uid as { id: string }).id));
  };
  const pushStatic = (type: string, id: string): void => {
    const key = uidKey(type, id);
    const stat = store.get(type, id);
    if (!stat) return;
    push(stat, key);
    for (const e of store.reachableFrom(key)) push(e, uidKey((e.uid as { type: string }).type, (e.uid as { id: string }).id));
  };
  if (needs.principal) {
    addWithClosure(principal.type, principal.id, needs.attrs ? projectEntityAttrs(principal.attrs, needs.attrs) : principal.attrs, principal.parents);
  }
  if (needs.resource) addWithClosure('Service', service, {}, []);
  if (needs.action) {
    for (const a of actionEntities(actionId)) {
      const { type, id } = a.uid as { type: string; id: string };
      const key = uidKey(type, id);
      const stat = store.get(type, id);
      push(stat ? { ...a, attrs: stat.attrs, parents: [...a.parents, ...stat.parents] } : a, key);
    }
  }
  return out;
}

export function inputToCedarRequest(
  input: RequestModel,
  set: CompiledPolicySet,
  principal: PrincipalRef = workloadPrincipal(input.source.principal),
  fields: ContextFields = contextFields(input, set),
): CedarRequest {
  const actionId = actionIdFor(input);
  const context = requestContext(input, set, fields);
  return {
    principal: { type: principal.type, id: principal.id },
    action: { type: ACTION_TYPE, id: actionId },
    resource: { type: RESOURCE_TYPE, id: input.service },
    context,
    entities: buildEntities(set, principal, actionId, input.service),
  };
}

