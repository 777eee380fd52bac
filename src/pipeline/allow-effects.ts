/**
 * What an allow does to the request and the response (docs/safety.md,
 * "Sanitize and propagate"): bundle-wide rules from bundle.yaml first, then
 * the effect annotations of the permits that determined the allow, in policy
 * order, merged and rendered for this request.
 *
 * Computed after the decision, from the determining policies the decision
 * names and this request's own principal and context, so a cached decision
 * never carries another request's values: the cache stores which policies
 * decided, never what their templates rendered to.
 *
 * Part of the response stage: it reads the compiled set's parsed annotations
 * and bundle settings but never calls the engine.
 */
import type { BundleSettings } from '../bundle/bundle-settings.js';
import type { CedarValueJson } from '../cedar/cedar-wasm.js';
import type { ActiveBundle } from '../bundle/active-bundle.js';
import type { PrincipalRef } from '../context/principal.js';
import type { Decision } from '../decision.js';
import {
  isEmptyEffects,
  parseHeaderNames,
  parseHeaderTemplateMap,
  parseQueryNameList,
  type AllowEffects,
  type HeaderTemplate,
  type TemplatePart,
} from '../effects/effect-syntax.js';
import type { RequestModel } from '../envoy/request-model.js';

/** A rendered value longer than this is left out: upstreams and proxies cap header size (Envoy: 60 KiB for all headers). */
export const MAX_RENDERED_HEADER_CHARS = 8192;
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this pattern is for.
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Effects from one place: a bundle.yaml rule or a policy. */
export interface EffectSource {
  /** `bundle:<rule name>` or the policy id; names the winner and loser of a conflict in the log. */
  source: string;
  effects: AllowEffects;
}

interface BundleEffectRule extends EffectSource {
  principalType?: string;
}

/** What the templates can read. */
export interface EffectScope {
  principal: PrincipalRef;
  /** The principal's attributes from entities.json, read when the request's own do not have one. */
  staticAttrs?: Readonly<Record<string, CedarValueJson>>;
  /** The request's Cedar context (all fields, not only those policies read). */
  context?: Readonly<Record<string, CedarValueJson>>;
  decisionId: string;
  version: string | null;
}

/** Names touched, for the decision log and `authz check` (never values). */
export interface EffectReport {
  headers_set?: string[];
  headers_removed?: string[];
  query_removed?: string[];
  response_headers?: string[];
  /** A header set by two sources: the first in merge order wins. */
  conflicts?: { header: string; kept: string; dropped: string }[];
  /** A template that could not be rendered: the header is left out (and a request header removed). */
  skipped?: { header: string; reason: string }[];
}

export interface ShapedEffects {
  setHeaders: Record<string, string>;
  removeHeaders: string[];
  removeQuery: string[];
  responseHeaders: Record<string, string>;
  report: EffectReport;
}

const parsedRules = new WeakMap<BundleSettings, readonly BundleEffectRule[]>();

/** bundle.yaml's allowEffects, parsed once per settings object (bundle-settings.ts already refused bad ones). */
export function bundleEffectRules(settings: BundleSettings): readonly BundleEffectRule[] {
  let rules = parsedRules.get(settings);
  if (!rules) {
    rules = (settings.allowEffects ?? []).map((r, i) => ({
      source: `bundle:${r.name ?? `#${i}`}`,
      principalType: r.principalType,
      effects: {
        stripHeaders: r.stripHeaders.length ? parseHeaderNames(r.stripHeaders, 'stripHeaders') : [],
        setHeaders: parseHeaderTemplateMap(r.setHeaders, 'setHeaders', false),
        stripQuery: r.stripQuery.length ? parseQueryNameList(r.stripQuery.join(','), 'stripQuery') : [],
        responseHeaders: parseHeaderTemplateMap(r.responseHeaders, 'responseHeaders', true),
      },
    }));
    parsedRules.set(settings, rules);
  }
  return rules;
}

/**
 * The sources of an allow's effects, in merge order: bundle rules (for this
 * principal type) in file order, then the determining permits in policy order.
 * @param determining determining policy ids; empty when no policy decided the allow
 */
export function effectSources(
  set: ActiveBundle,
  determining: readonly string[],
  principalType: string,
): EffectSource[] {
  const out: EffectSource[] = [];
  for (const r of bundleEffectRules(set.settings)) {
    if ((r.principalType === undefined || r.principalType === principalType) && !isEmptyEffects(r.effects)) out.push(r);
  }
  const permits = [];
  for (const id of determining) {
    const p = set.policySet.policies.get(id);
    if (p?.effect === 'permit' && p.annotations.effects) permits.push(p);
  }
  permits.sort((a, b) => a.order - b.order);
  for (const p of permits) out.push({ source: p.id, effects: p.annotations.effects! });
  return out;
}

type Rendered = { ok: true; value: string } | { ok: false; reason: string };

function scalar(v: CedarValueJson | undefined): string | undefined | null {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  const entity = o.__entity as { id?: unknown } | undefined;
  if (entity && typeof entity.id === 'string') return entity.id;
  const extn = o.__extn as { arg?: unknown } | undefined;
  if (extn && typeof extn.arg === 'string') return extn.arg;
  return null;
}

function lookup(path: readonly string[], scope: EffectScope): CedarValueJson | undefined {
  const [root, first] = path;
  let v: CedarValueJson | undefined;
  if (root === 'decision') return first === 'id' ? scope.decisionId : (scope.version ?? undefined);
  if (root === 'principal') {
    if (first === 'id') return scope.principal.id;
    if (first === 'type') return scope.principal.type;
    v = Object.hasOwn(scope.principal.attrs, first) ? scope.principal.attrs[first] : scope.staticAttrs?.[first];
  } else {
    v = scope.context?.[first];
  }
  for (let i = 2; i < path.length; i++) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || '__entity' in v || '__extn' in v) return undefined;
    const rec = v as Record<string, CedarValueJson>;
    v = Object.hasOwn(rec, path[i]) ? rec[path[i]] : undefined;
  }
  return v;
}

export function renderTemplate(parts: readonly TemplatePart[], scope: EffectScope): Rendered {
  let out = '';
  for (const part of parts) {
    if ('text' in part) {
      out += part.text;
      continue;
    }
    const name = part.path.join('.');
    const s = scalar(lookup(part.path, scope));
    if (s === undefined) return { ok: false, reason: `${name} is absent` };
    if (s === null) return { ok: false, reason: `${name} is not a single value` };
    out += s;
  }
  if (CONTROL.test(out)) return { ok: false, reason: 'the value would contain a control character' };
  if (out.length > MAX_RENDERED_HEADER_CHARS)
    return { ok: false, reason: `the value would be longer than ${MAX_RENDERED_HEADER_CHARS} characters` };
  return { ok: true, value: out };
}

/**
 * Merge and render. Removals are united; a header set by two sources keeps
 * the first (the conflict is reported); a request header whose template
 * cannot be rendered is removed instead, so a value the client sent under a
 * name the policies own never reaches the upstream.
 * @param requestHeaders the request's headers (lower-case), to expand `prefix-*` removals
 */
export function shapeEffects(
  sources: readonly EffectSource[],
  scope: EffectScope,
  requestHeaders: Readonly<Record<string, string>>,
): ShapedEffects {
  const strip = new Set<string>();
  const query = new Set<string>();
  const setDecl = new Map<string, { source: string; t: HeaderTemplate }>();
  const responseDecl = new Map<string, { source: string; t: HeaderTemplate }>();
  const report: EffectReport = {};
  const declare = (
    into: Map<string, { source: string; t: HeaderTemplate }>,
    source: string,
    t: HeaderTemplate,
  ): void => {
    const kept = into.get(t.name);
    if (kept) (report.conflicts ??= []).push({ header: t.name, kept: kept.source, dropped: source });
    else into.set(t.name, { source, t });
  };
  for (const { source, effects } of sources) {
    for (const name of effects.stripHeaders) {
      if (!name.endsWith('*')) strip.add(name);
      else {
        const prefix = name.slice(0, -1);
        for (const h in requestHeaders) if (h.startsWith(prefix)) strip.add(h);
      }
    }
    for (const t of effects.setHeaders) declare(setDecl, source, t);
    for (const q of effects.stripQuery) query.add(q);
    for (const t of effects.responseHeaders) declare(responseDecl, source, t);
  }
  const setHeaders: Record<string, string> = {};
  for (const [name, { t }] of setDecl) {
    const r = renderTemplate(t.parts, scope);
    if (r.ok) {
      setHeaders[name] = r.value;
      // Overwriting already replaces what the client sent; removing it too would drop our value.
      strip.delete(name);
    } else {
      (report.skipped ??= []).push({ header: name, reason: r.reason });
      strip.add(name);
    }
  }
  const responseHeaders: Record<string, string> = {};
  for (const [name, { t }] of responseDecl) {
    const r = renderTemplate(t.parts, scope);
    if (r.ok) responseHeaders[name] = r.value;
    else (report.skipped ??= []).push({ header: `response ${name}`, reason: r.reason });
  }
  const shaped: ShapedEffects = {
    setHeaders,
    removeHeaders: [...strip],
    removeQuery: [...query],
    responseHeaders,
    report,
  };
  const set = Object.keys(setHeaders);
  if (set.length) report.headers_set = set;
  if (shaped.removeHeaders.length) report.headers_removed = shaped.removeHeaders;
  if (shaped.removeQuery.length) report.query_removed = shaped.removeQuery;
  const resp = Object.keys(responseHeaders);
  if (resp.length) report.response_headers = resp;
  return shaped;
}

/** The allow with its effects on top of what it already carries (e.g. a removed forged marker). */
export function withEffects(decision: Decision, e: ShapedEffects): Decision {
  const out: Decision = { ...decision, headers: { ...decision.headers, ...e.setHeaders } };
  const remove = [...(decision.headersToRemove ?? [])];
  for (const h of e.removeHeaders) if (!remove.includes(h) && !(h in out.headers)) remove.push(h);
  if (remove.length) out.headersToRemove = remove;
  if (e.removeQuery.length) out.queryParametersToRemove = e.removeQuery;
  if (Object.keys(e.responseHeaders).length)
    out.responseHeaders = { ...decision.responseHeaders, ...e.responseHeaders };
  return out;
}

/** What the pipeline knows about the request when the answer is shaped. */
export interface EffectInputs {
  input?: RequestModel;
  principal?: PrincipalRef;
  context?: Readonly<Record<string, CedarValueJson>>;
}

/**
 * The answer Envoy gets, with effects when it is an allow of an HTTP request.
 * Policy effects come only with an allow the policies made (reason `allowed`);
 * bundle-wide rules also sanitize dry-run and fail-open allows, which pass the
 * request on all the same.
 */
export function applyAllowEffects(
  answer: Decision,
  set: ActiveBundle | null,
  from: EffectInputs,
): { decision: Decision; report?: EffectReport } {
  if (answer.kind !== 'allow' || !set || from.input?.kind !== 'http' || !from.principal) return { decision: answer };
  const principal = from.principal;
  const sources = effectSources(set, answer.reason === 'allowed' ? answer.policies : [], principal.type);
  if (sources.length === 0) return { decision: answer };
  const scope: EffectScope = {
    principal,
    staticAttrs: set.policySet.entities.get(principal.type, principal.id)?.attrs as
      | Record<string, CedarValueJson>
      | undefined,
    context: from.context,
    decisionId: answer.decisionId,
    version: answer.version,
  };
  const shaped = shapeEffects(sources, scope, from.input.headers);
  return { decision: withEffects(answer, shaped), report: shaped.report };
}
