/**
 * Projection: a context value or an entity reduced to what a read set
 * (reads.ts) observes, so Cedar gets only that. One walker over the reads
 * tree serves both the projection and the cache key (context-key.ts), which
 * differ only in what they keep of a string tested against literals.
 */
import type { CedarValueJson, EntityJson } from './cedar-wasm.js';
import type { ContextReads, ReadSet } from './reads.js';

/** Stands in for a value only tested with `has`, so that value stays out of requests and cache keys. */
export const PRESENCE_PLACEHOLDER = true;

function isPlainRecord(v: CedarValueJson): boolean {
  return (
    v !== null &&
    typeof v === 'object' &&
    !Array.isArray(v) &&
    !('__extn' in v) &&
    !('__entity' in v) &&
    !('__expr' in v)
  );
}

/** What to keep of a value that `reads` only tests against literals (`like`, `==`). */
export type TestedValue = (value: CedarValueJson, reads: ContextReads) => unknown;

const keepValue: TestedValue = (value) => value;

/**
 * Keep only what `reads` observes; a value tested against literals becomes
 * `tested(value)` (itself by default). A value whose inside is read but which
 * is not a record (a string read as `.x`) is kept whole so that Cedar reports the same error.
 */
export function projectValue(value: CedarValueJson, reads: ContextReads, tested: TestedValue = keepValue): unknown {
  if (reads.whole) return value;
  if (reads.tests.length > 0) return tested(value, reads);
  if (reads.children.size === 0) return reads.present ? PRESENCE_PLACEHOLDER : value;
  if (!isPlainRecord(value)) return value;
  const rec = value as Record<string, CedarValueJson>;
  const out: Record<string, unknown> = {};
  for (const [k, child] of reads.children) {
    if (!Object.hasOwn(rec, k)) continue;
    const v = projectValue(rec[k], child, tested);
    // `out["__proto__"] = v` would set a prototype instead of a key; defineProperty for that name only
    // (it is several times slower than an assignment, and this runs on every cache lookup).
    if (k === '__proto__')
      Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    else out[k] = v;
  }
  return out;
}

export function projectContext(
  context: Record<string, CedarValueJson>,
  reads: ContextReads,
): Record<string, CedarValueJson> {
  // Below the root an unread node does not exist; the root itself can be unread: then nothing is sent.
  if (!reads.whole && reads.children.size === 0) return {};
  return projectValue(context, reads) as Record<string, CedarValueJson>;
}

/** Attributes (and tags) of one entity, reduced to what any policy reads. */
export function projectEntityAttrs(
  attrs: Record<string, CedarValueJson>,
  names: ReadonlySet<string>,
): Record<string, CedarValueJson> {
  let out: Record<string, CedarValueJson> | undefined;
  for (const k in attrs) {
    if (names.has(k)) (out ??= {})[k] = attrs[k];
  }
  return out ?? {};
}

export function projectEntity(e: EntityJson, reads: ReadSet): EntityJson {
  const out: EntityJson = {
    uid: e.uid,
    attrs: projectEntityAttrs(e.attrs ?? {}, reads.entityAttrs),
    parents: e.parents ?? [],
  };
  if (reads.tags && e.tags) out.tags = e.tags;
  return out;
}
