/**
 * The request body Envoy forwards with `with_request_body` (Istio:
 * `includeRequestBodyInCheck`), read lazily: the model keeps a reference to the
 * bytes and decodes the text or parses JSON only when asked, so a policy set
 * that never reads `context.body` / `context.json` pays for neither (see
 * the pipeline (src/pipeline/authorize-input.ts), which asks only when the evaluated slice reads them).
 *
 * What Envoy sends (external_auth.proto AttributeContext.HttpRequest):
 * - `body` (string) with `pack_as_bytes: false`, `raw_body` (bytes) with
 *   `pack_as_bytes: true`. Proto3 cannot tell "no body" from "empty", so an
 *   empty body is no body.
 * - `x-envoy-auth-partial-body: true` when `allow_partial_message` cut the body
 *   at `max_request_bytes`; `size` is the body's full length when Envoy knows it.
 */
import type { WireHttpRequest } from './wire-types.js';

/** What a body may cost: past these, `context.body` / `context.json` are left out. */
export interface BodyLimits {
  /** Longest body (in bytes) given to policies; a longer one counts as truncated. */
  maxBytes: number;
  /** Deepest nesting of a JSON body (the top value is depth 1). */
  jsonMaxDepth: number;
  /** Most object keys plus array elements in a JSON body, all levels together. */
  jsonMaxKeys: number;
}

/** Envoy's own `max_request_bytes` examples are 8 KiB; 64 KiB leaves room for a larger configured buffer. */
export const DEFAULT_BODY_MAX_BYTES = 64 * 1024;
export const DEFAULT_JSON_MAX_DEPTH = 32;
export const DEFAULT_JSON_MAX_KEYS = 1000;
export const DEFAULT_BODY_LIMITS: BodyLimits = Object.freeze({
  maxBytes: DEFAULT_BODY_MAX_BYTES,
  jsonMaxDepth: DEFAULT_JSON_MAX_DEPTH,
  jsonMaxKeys: DEFAULT_JSON_MAX_KEYS,
});

/** Envoy's header for a body cut at max_request_bytes. */
export const PARTIAL_BODY_HEADER = 'x-envoy-auth-partial-body';

/** A JSON value as JSON.parse gives it, within the limits. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface RequestBody {
  /** Envoy cut the body (or it is longer than `maxBytes`): its text and JSON are not given to policies. */
  readonly truncated: boolean;
  /** The body as UTF-8 text (invalid sequences as U+FFFD), or undefined when absent or truncated. */
  text(): string | undefined;
  /** The parsed body when it is declared JSON and parses within the limits, else undefined. */
  json(): JsonValue | undefined;
}

/** A request without a body (network checks, Envoy without with_request_body, or an empty body). */
export const NO_BODY: RequestBody = Object.freeze({ truncated: false, text: () => undefined, json: () => undefined });

/**
 * The body of `http`, read lazily. `headers` are the collected lower-case
 * headers (for the partial-body flag and the content type).
 */
export function requestBody(
  http: WireHttpRequest,
  headers: Record<string, string>,
  limits: BodyLimits = DEFAULT_BODY_LIMITS,
): RequestBody {
  // Only real bytes count as raw_body: a hand-written CheckRequest (authz check --request) may hold anything there.
  const rawBytes = http.raw_body instanceof Uint8Array && http.raw_body.length > 0 ? http.raw_body : undefined;
  const raw = rawBytes ?? (typeof http.body === 'string' && http.body.length > 0 ? http.body : undefined);
  const flagged = headers[PARTIAL_BODY_HEADER]?.trim().toLowerCase() === 'true';
  if (raw === undefined) return flagged ? TRUNCATED_EMPTY : NO_BODY;
  const byteLength = typeof raw === 'string' ? Buffer.byteLength(raw, 'utf8') : raw.length;
  // Envoy's `size` is the whole body's length when known (-1 or absent otherwise): more than arrived means cut.
  const size = Number(http.size ?? -1);
  const truncated = flagged || byteLength > limits.maxBytes || (Number.isFinite(size) && size > byteLength);
  if (truncated) return TRUNCATED_EMPTY;
  const isJson = isJsonContentType(headers['content-type'] ?? '');
  let text: string | undefined;
  let json: JsonValue | undefined;
  let parsed = false;
  const readText = (): string =>
    (text ??= typeof raw === 'string' ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('utf8'));
  return {
    truncated: false,
    text: readText,
    json() {
      if (!parsed) {
        parsed = true;
        json = isJson ? parseJsonWithin(readText(), limits) : undefined;
      }
      return json;
    },
  };
}

const TRUNCATED_EMPTY: RequestBody = Object.freeze({ truncated: true, text: () => undefined, json: () => undefined });

/** application/json, and any `+json` type (application/problem+json, application/merge-patch+json, …). */
export function isJsonContentType(contentType: string): boolean {
  const type = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/**
 * JSON.parse (iterative in V8, so deep input cannot overflow the stack) and
 * then one walk checking depth and key count: undefined when the text is not
 * JSON or exceeds a limit. The input is already bounded by `maxBytes`.
 */
export function parseJsonWithin(text: string, limits: BodyLimits): JsonValue | undefined {
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch {
    return undefined;
  }
  let keys = 0;
  // An explicit stack: a depth check by recursion would itself recurse as deep as the input.
  const stack: { v: JsonValue; depth: number }[] = [{ v: value, depth: 1 }];
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > limits.jsonMaxDepth) return undefined;
    const children = Array.isArray(v) ? v : Object.values(v);
    keys += children.length;
    if (keys > limits.jsonMaxKeys) return undefined;
    for (const c of children) if (c !== null && typeof c === 'object') stack.push({ v: c, depth: depth + 1 });
  }
  return value;
}
