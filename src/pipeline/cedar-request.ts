/**
 * RequestModel → Cedar request (principal, action, resource, context, entities).
 * This is the contract policy authors write against; the README documents it.
 */
import type { RequestModel, PeerModel } from '../envoy/request-model.js';
import type { CedarValueJson } from '../cedar/cedar-wasm.js';
import { CONNECT_ACTION, RESOURCE_TYPE } from '../cedar/action-hierarchy.js';
import { fullCedarRequest, type EngineRequest } from '../cedar/engine.js';
import type { CedarRequest } from '../cedar/evaluate.js';
import type { ContextReads } from '../cedar/reads.js';
import { workloadPrincipal, type PrincipalRef } from '../context/principal.js';
import { contextFields, type ContextFields } from '../context/context-fields.js';
import type { ActiveBundle } from '../bundle/active-bundle.js';
import { addBodyFields } from './body-context.js';

export type { CedarRequest } from '../cedar/evaluate.js';
export { RESOURCE_TYPE } from '../cedar/action-hierarchy.js';

export const ACTION_TYPE = 'Action';

export function actionIdFor(input: RequestModel): string {
  return input.kind === 'network' ? CONNECT_ACTION : input.method;
}

export function ipValue(ip: string): CedarValueJson {
  return { __extn: { fn: 'ip', arg: ip } };
}

/** The last instant formatted: requests arriving in the same millisecond (or sent with whole seconds, as Envoy may) share it. */
let lastMs = Number.NaN;
let lastIso = '';

export function datetimeValue(ms: number): CedarValueJson {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return { __extn: { fn: 'datetime', arg: lastIso } };
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
 * The whole context of a request against a bundle: Envoy's fields, the server's
 * fields, the bundle's mode, and the body fields some policy of the set reads
 * (`reads`, by default what the whole set reads). A body field no policy reads
 * is not computed: the projection would drop it from every evaluation against
 * this set anyway, so leaving it out is exact and saves decoding and parsing.
 */
export function requestContext(
  input: RequestModel,
  bundle: ActiveBundle,
  fields: ContextFields = contextFields(input, bundle),
  reads: ContextReads = bundle.policySet.slices.allReads.context,
): Record<string, CedarValueJson> {
  const context = buildContext(input, fields);
  // bundle.yaml's mode, so policies can tighten in high-alert too.
  context.mode = bundle.settings.mode;
  addBodyFields(context, input.body, reads);
  return context;
}

/**
 * The Envoy mapping: a request model (and the caller's identity and the
 * server's context fields) as a Cedar request for the engine. The principal is
 * the request's one entity (SPIFFE attributes, JWT claims and groups); the
 * action groups come from the set's Envoy entity base.
 */
export function inputToEngineRequest(
  input: RequestModel,
  bundle: ActiveBundle,
  principal: PrincipalRef = workloadPrincipal(input.source.principal),
  fields?: ContextFields,
  /** Which body fields to compute; by default those the set's enforced policies read. */
  reads?: ContextReads,
): EngineRequest {
  return {
    principal: { type: principal.type, id: principal.id },
    action: { type: 'Action', id: actionIdFor(input) },
    resource: { type: RESOURCE_TYPE, id: input.service },
    context: requestContext(input, bundle, fields, reads),
    entities: [{ uid: { type: principal.type, id: principal.id }, attrs: principal.attrs, parents: principal.parents }],
  };
}

/** The whole Cedar request for a check: full context, every entity it can reach (shadow evaluations, tests). */
export function inputToCedarRequest(
  input: RequestModel,
  bundle: ActiveBundle,
  principal: PrincipalRef = workloadPrincipal(input.source.principal),
  fields: ContextFields = contextFields(input, bundle),
): CedarRequest {
  return fullCedarRequest(bundle.policySet, inputToEngineRequest(input, bundle, principal, fields), 'envoy');
}
