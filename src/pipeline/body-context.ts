/**
 * The request body as Cedar context fields: `context.bodyTruncated` (always,
 * when asked for), `context.body` (the text) and `context.json` (the parsed
 * value). Each is computed only when some policy of the set reads it
 * (cedar-request.ts `requestContext`): the projection (cedar/projection.ts) would
 * drop an unread field from every evaluation anyway, so leaving it out
 * beforehand sends Cedar exactly the same requests, minus decoding and parsing.
 */
import type { JsonValue, RequestBody } from '../envoy/request-body.js';
import type { CedarValueJson } from '../cedar/cedar-wasm.js';
import type { ContextReads } from '../cedar/reads.js';

export const BODY_CONTEXT_FIELDS = ['body', 'json', 'bodyTruncated'] as const;

/**
 * Keys Cedar's JSON format reads as an entity reference or an extension value
 * (`{"__entity": {...}}`, `{"__extn": {...}}`, the legacy `__expr`). A body must
 * not be able to make `context.json.owner` an entity, so they are dropped.
 */
const CEDAR_ESCAPE_KEYS: ReadonlySet<string> = new Set(['__entity', '__extn', '__expr']);

/** Whether `reads` (undefined: everything) can observe the context field `name`. */
export function readsContextField(reads: ContextReads | undefined, name: string): boolean {
  return !reads || reads.whole || reads.children.has(name);
}

/** True when a slice with these reads can observe anything of the body. */
export function readsBody(reads: ContextReads | undefined): boolean {
  return BODY_CONTEXT_FIELDS.some((f) => readsContextField(reads, f));
}

/** Add the body fields `reads` can observe to `context` (all of them without `reads`). */
export function addBodyFields(context: Record<string, CedarValueJson>, body: RequestBody, reads?: ContextReads): void {
  if (readsContextField(reads, 'bodyTruncated')) context.bodyTruncated = body.truncated;
  if (readsContextField(reads, 'body')) {
    const text = body.text();
    if (text !== undefined) context.body = text;
  }
  if (readsContextField(reads, 'json')) {
    const json = body.json();
    const value = json === undefined ? undefined : jsonToCedar(json);
    if (value !== undefined) context.json = value;
  }
}

/**
 * A parsed JSON value as a Cedar value:
 * - objects → records (null members and Cedar's escape keys left out);
 * - arrays → sets (Cedar sets are unordered and without duplicates; null elements left out);
 * - integers within ±(2^53 − 1) → Long; other numbers (fractions, and integers
 *   JavaScript cannot hold exactly, even inside Long's range) → their JavaScript
 *   string form ("1.5", "1e+300"), so a policy never compares a rounded number;
 * - strings and booleans as they are (lone surrogates as U+FFFD, as Cedar reads them);
 * - null → undefined (absent).
 * Input is already bounded in depth and size (request-body.ts), so recursion is bounded too.
 */
export function jsonToCedar(v: JsonValue): CedarValueJson | undefined {
  if (v === null) return undefined;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') return wellFormed(v);
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : String(v);
  if (Array.isArray(v)) {
    const out: CedarValueJson[] = [];
    for (const x of v) {
      const c = jsonToCedar(x);
      if (c !== undefined) out.push(c);
    }
    return out;
  }
  const out: Record<string, CedarValueJson> = {};
  for (const k of Object.keys(v)) {
    if (CEDAR_ESCAPE_KEYS.has(k)) continue;
    const c = jsonToCedar(v[k]!);
    // defineProperty: a body key "__proto__" is a key like any other, not a prototype.
    if (c !== undefined)
      Object.defineProperty(out, wellFormed(k), { value: c, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function wellFormed(s: string): string {
  return (s as unknown as { toWellFormed(): string }).toWellFormed();
}
