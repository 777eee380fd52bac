/**
 * The small language of allow effects (docs/safety.md, "Sanitize and
 * propagate"): lists of header and query-parameter names, and header
 * templates. Parsed once, when a set is compiled or bundle.yaml is read, so
 * a bad list or template refuses the bundle instead of surprising a request.
 *
 * Pure and dependency-free: the engine's annotation reader (src/cedar) and
 * bundle.yaml (src/bundle) validate with it; the response stage
 * (src/pipeline/allow-effects.ts) renders what it parsed.
 *
 *   @strip_headers("cookie, x-debug, x-internal-*")
 *   @set_headers("x-user-id: {principal.id}; x-tenant: {principal.tenant}")
 *   @strip_query("access_token, api_key")
 *   @response_headers("cache-control: no-store")
 *
 * Templates: literal text with `{path}` placeholders, where path is
 * `principal.id`, `principal.type`, `principal.<attr>[.<attr>...]`,
 * `context.<field>[.<field>...]`, `decision.id` or `decision.version`.
 * `{{` and `}}` are literal braces; `;;` is a literal `;` inside a value.
 * No expressions, no conditions, no loops.
 */

export class EffectSyntaxError extends Error {}

export type TemplatePart = { text: string } | { path: readonly string[] };

export interface HeaderTemplate {
  /** Lower-case header name. */
  name: string;
  parts: readonly TemplatePart[];
}

export interface AllowEffects {
  /** Lower-case names; one ending in `*` removes every request header with that prefix. */
  stripHeaders: readonly string[];
  setHeaders: readonly HeaderTemplate[];
  stripQuery: readonly string[];
  responseHeaders: readonly HeaderTemplate[];
}

/** The effect annotations, by the name written after `@`. */
export const EFFECT_ANNOTATIONS = ['strip_headers', 'set_headers', 'strip_query', 'response_headers'] as const;
export type EffectAnnotation = (typeof EFFECT_ANNOTATIONS)[number];

export const TEMPLATE_ROOTS = ['principal', 'context', 'decision'] as const;
const DECISION_FIELDS = ['id', 'version'];

/** RFC 9110 token characters, lower-case (names are normalised before the check). */
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
/** Query parameter names we can remove: RFC 3986 unreserved characters and brackets (`ids[]`). */
const QUERY_NAME = /^[A-Za-z0-9._~[\]-]+$/;
const PATH_SEGMENT = /^[A-Za-z0-9_-]+$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this pattern is for.
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Headers Envoy will not let an authorization answer change (pseudo-headers
 * and `host` are the route's; hop-by-hop headers belong to one connection),
 * plus our own markers, which only the server sets.
 */
export const FORBIDDEN_HEADERS: ReadonlySet<string> = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'x-authz-fail-open',
  'x-authz-dry-run-decision',
]);
/** Set by Envoy from the body it sends; a response header of ours would contradict it. */
const FORBIDDEN_RESPONSE_HEADERS: ReadonlySet<string> = new Set(['content-length']);

export function isEmptyEffects(e: AllowEffects): boolean {
  return (
    e.stripHeaders.length === 0 &&
    e.setHeaders.length === 0 &&
    e.stripQuery.length === 0 &&
    e.responseHeaders.length === 0
  );
}

function checkHeaderName(name: string, where: string, response: boolean): void {
  if (!name) throw new EffectSyntaxError(`${where}: a header name is empty`);
  if (name.startsWith(':'))
    throw new EffectSyntaxError(
      `${where}: "${name}" is a pseudo-header; Envoy does not let an authorization answer change it`,
    );
  if (!HEADER_NAME.test(name))
    throw new EffectSyntaxError(`${where}: "${name}" is not a header name (letters, digits and !#$%&'*+.^_\`|~-)`);
  if (FORBIDDEN_HEADERS.has(name) || (response && FORBIDDEN_RESPONSE_HEADERS.has(name))) {
    throw new EffectSyntaxError(
      `${where}: "${name}" cannot be changed by an authorization answer (Envoy forbids it or it belongs to one connection)`,
    );
  }
}

function splitList(text: string, where: string): string[] {
  const items = text.split(',').map((s) => s.trim());
  if (items.length === 1 && items[0] === '') throw new EffectSyntaxError(`${where}: the list is empty`);
  if (items.some((s) => s === ''))
    throw new EffectSyntaxError(`${where}: "${text}" has an empty item (write names separated by single commas)`);
  return items;
}

/** `"cookie, x-debug, x-internal-*"` → lower-case names; a trailing `*` is a prefix. */
export function parseHeaderNameList(text: string, where: string): string[] {
  const out: string[] = [];
  for (const raw of splitList(text, where)) {
    const name = raw.toLowerCase();
    const base = name.endsWith('*') ? name.slice(0, -1) : name;
    if (name.endsWith('*') && (base === '' || base.includes('*'))) {
      throw new EffectSyntaxError(
        `${where}: "${raw}": a wildcard needs a prefix before one trailing * (e.g. x-internal-*)`,
      );
    }
    if (base.includes('*')) throw new EffectSyntaxError(`${where}: "${raw}": * may only end a name`);
    checkHeaderName(base, where, false);
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

/** Header names a list can also be given as (bundle.yaml arrays). */
export function parseHeaderNames(names: readonly string[], where: string): string[] {
  return parseHeaderNameList(names.join(','), where);
}

export function parseQueryNameList(text: string, where: string): string[] {
  const out: string[] = [];
  for (const name of splitList(text, where)) {
    if (!QUERY_NAME.test(name))
      throw new EffectSyntaxError(
        `${where}: "${name}" is not a query parameter name we can remove (letters, digits, ._~-[])`,
      );
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

/** One template (a header value) → parts. */
export function parseTemplate(text: string, where: string): TemplatePart[] {
  if (CONTROL.test(text)) throw new EffectSyntaxError(`${where}: the template contains a control character`);
  const parts: TemplatePart[] = [];
  let literal = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '{' && text[i + 1] === '{') {
      literal += '{';
      i += 2;
    } else if (c === '}' && text[i + 1] === '}') {
      literal += '}';
      i += 2;
    } else if (c === '}') {
      throw new EffectSyntaxError(`${where}: "${text}" has a } without its { (write }} for a literal brace)`);
    } else if (c === '{') {
      const end = text.indexOf('}', i + 1);
      if (end < 0)
        throw new EffectSyntaxError(`${where}: "${text}" has a { that is never closed (write {{ for a literal brace)`);
      if (literal) parts.push({ text: literal });
      literal = '';
      parts.push({ path: parsePlaceholder(text.slice(i + 1, end).trim(), where) });
      i = end + 1;
    } else {
      literal += c;
      i++;
    }
  }
  if (literal) parts.push({ text: literal });
  return parts;
}

function parsePlaceholder(inner: string, where: string): string[] {
  const path = inner.split('.');
  const root = path[0];
  if (!(TEMPLATE_ROOTS as readonly string[]).includes(root)) {
    throw new EffectSyntaxError(`${where}: {${inner}}: a placeholder starts with principal., context. or decision.`);
  }
  if (path.length < 2 || path.some((s) => !PATH_SEGMENT.test(s))) {
    throw new EffectSyntaxError(
      `${where}: {${inner}} is not a placeholder (names of letters, digits, _ and - separated by dots, e.g. {principal.id})`,
    );
  }
  if (root === 'decision' && (path.length !== 2 || !DECISION_FIELDS.includes(path[1]))) {
    throw new EffectSyntaxError(`${where}: {${inner}}: decision has only id and version`);
  }
  if (root === 'principal' && (path[1] === 'id' || path[1] === 'type') && path.length > 2) {
    throw new EffectSyntaxError(`${where}: {${inner}}: principal.${path[1]} is a string and has no fields`);
  }
  return path;
}

/**
 * `"x-user-id: {principal.id}; x-tenant: {principal.tenant}"` → templates.
 * `;;` stands for a `;` inside a value (e.g. a content-security-policy).
 */
export function parseHeaderTemplateList(text: string, where: string, response: boolean): HeaderTemplate[] {
  const entries = splitPairs(text).map((s) => s.trim());
  if (entries.length > 1 && entries[entries.length - 1] === '') entries.pop(); // a trailing ";" is harmless
  if (entries.length === 1 && entries[0] === '') throw new EffectSyntaxError(`${where}: the list is empty`);
  const out: HeaderTemplate[] = [];
  for (const entry of entries) {
    const colon = entry.indexOf(':', entry.startsWith(':') ? 1 : 0);
    if (colon <= 0)
      throw new EffectSyntaxError(`${where}: "${entry}" must look like "name: value" (pairs separated by ;)`);
    const name = entry.slice(0, colon).trim().toLowerCase();
    checkHeaderName(name, where, response);
    if (out.some((t) => t.name === name)) throw new EffectSyntaxError(`${where}: "${name}" is set twice`);
    const parts = parseTemplate(entry.slice(colon + 1).trim(), `${where}: ${name}`);
    if (parts.length === 0) throw new EffectSyntaxError(`${where}: "${name}" has an empty value`);
    out.push({ name, parts });
  }
  return out;
}

/** Split on `;`, reading `;;` as a literal `;`. */
function splitPairs(text: string): string[] {
  const out: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== ';') current += text[i];
    else if (text[i + 1] === ';') {
      current += ';';
      i++;
    } else {
      out.push(current);
      current = '';
    }
  }
  out.push(current);
  return out;
}

/** A `name → template` map (bundle.yaml) → templates. */
export function parseHeaderTemplateMap(
  map: Readonly<Record<string, string>>,
  where: string,
  response: boolean,
): HeaderTemplate[] {
  const out: HeaderTemplate[] = [];
  for (const [rawName, value] of Object.entries(map)) {
    const name = rawName.trim().toLowerCase();
    checkHeaderName(name, where, response);
    if (out.some((t) => t.name === name)) throw new EffectSyntaxError(`${where}: "${name}" is set twice`);
    const parts = parseTemplate(String(value).trim(), `${where}: ${name}`);
    if (parts.length === 0) throw new EffectSyntaxError(`${where}: "${name}" has an empty value`);
    out.push({ name, parts });
  }
  return out;
}

/** An error in one effect annotation; `annotation` names it (without `@`). */
export class EffectAnnotationError extends EffectSyntaxError {
  constructor(
    message: string,
    readonly annotation: EffectAnnotation,
  ) {
    super(message);
  }
}

/**
 * A policy's effect annotations → its effects, or undefined when it has none.
 * Messages start with `@name: `; the caller adds where it is written.
 */
export function parseEffectAnnotations(raw: Readonly<Record<string, string | null>>): AllowEffects | undefined {
  if (!EFFECT_ANNOTATIONS.some((a) => raw[a] !== undefined)) return undefined;
  const parse = <T>(a: EffectAnnotation, fn: (text: string, where: string) => T[]): T[] => {
    const v = raw[a];
    if (v === undefined) return [];
    if (v === null) throw new EffectAnnotationError(`@${a} needs a value, e.g. @${a}("...")`, a);
    try {
      return fn(v, `@${a}`);
    } catch (err) {
      if (err instanceof EffectSyntaxError) throw new EffectAnnotationError(err.message, a);
      throw err;
    }
  };
  return Object.freeze({
    stripHeaders: parse('strip_headers', parseHeaderNameList),
    setHeaders: parse('set_headers', (t, w) => parseHeaderTemplateList(t, w, false)),
    stripQuery: parse('strip_query', parseQueryNameList),
    responseHeaders: parse('response_headers', (t, w) => parseHeaderTemplateList(t, w, true)),
  });
}
