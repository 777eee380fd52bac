/**
 * RequestModel → Cedar request (principal, action, resource, context, entities).
 * This is the contract policy authors write against; the README documents it.
 */
import type { RequestModel, PeerModel } from '../envoy/request-model.js';
import type { CedarValueJson, EntityJson } from './cedar-wasm.js';
import { CONNECT_ACTION } from './action-hierarchy.js';
import type { CompiledPolicySet } from './compile.js';
import { fullCedarRequest, type EngineRequest } from './engine.js';
import { workloadPrincipal, type PrincipalRef } from './principal.js';
import { contextFields, type ContextFields } from '../context/context-fields.js';
import type { ContextReads, ReadSet } from './projection.js';
import { addBodyFields } from './body-context.js';

/** A request as it crosses into Cedar. */
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
 * fields, the set's mode, and the body fields some policy of the set reads
 * (`reads`, by default what the whole set reads). A body field no policy reads
 * is not computed: the projection would drop it from every evaluation against
 * this set anyway, so leaving it out is exact and saves decoding and parsing.
 */
export function requestContext(
  input: RequestModel,
  set: CompiledPolicySet,
  fields: ContextFields = contextFields(input, set),
  reads: ContextReads = set.slices.allReads.context,
): Record<string, CedarValueJson> {
  const context = buildContext(input, fields);
  // bundle.yaml's mode, so policies can tighten in high-alert too.
  context.mode = set.settings.mode;
  addBodyFields(context, input.body, reads);
  return context;
}

/** Which of the request's own entities' data a slice can observe (projection.ts). */
export interface EntityNeeds {
  principal: boolean;
  resource: boolean;
  action: boolean;
}

/** What a slice's policies can observe: unknown reach means everything. */
export function entityNeedsOf(reads: ReadSet): EntityNeeds {
  const all = reads.allEntities;
  return { principal: all || reads.principalEntity, resource: all || reads.resourceEntity, action: all || reads.actionEntities };
}

/**
 * The Envoy mapping: a request model (and the caller's identity and the
 * server's context fields) as a Cedar request for the engine. The principal is
 * the request's one entity (SPIFFE attributes, JWT claims and groups); the
 * action groups come from the set's Envoy entity base.
 */
export function inputToEngineRequest(
  input: RequestModel,
  set: CompiledPolicySet,
  principal: PrincipalRef = workloadPrincipal(input.source.principal),
  fields?: ContextFields,
): EngineRequest {
  return {
    principal: { type: principal.type, id: principal.id },
    action: { type: 'Action', id: actionIdFor(input) },
    resource: { type: RESOURCE_TYPE, id: input.service },
    context: requestContext(input, set, fields),
    entities: [{ uid: { type: principal.type, id: principal.id }, attrs: principal.attrs, parents: principal.parents }],
  };
}

/** The whole Cedar request for a check: full context, every entity it can reach (shadow evaluations, tests). */
export function inputToCedarRequest(
  input: RequestModel,
  set: CompiledPolicySet,
  principal: PrincipalRef = workloadPrincipal(input.source.principal),
  fields: ContextFields = contextFields(input, set),
): CedarRequest {
  return fullCedarRequest(set, inputToEngineRequest(input, set, principal, fields), 'envoy');
}
