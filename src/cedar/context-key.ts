/**
 * The context as the cache key sees it: like `projectContext`, except that a
 * string only tested against literals (`like`, `==`) is replaced by the
 * outcomes of those tests. Requests equal here get equal answers from the
 * slice these reads come from: every expression that looks at the string
 * is one of the tests. Values of another type are kept as they are.
 */
import type { CedarValueJson } from './cedar-wasm.js';
import { likeMatches } from './like-pattern.js';
import { projectValue, type TestedValue } from './projection.js';
import type { ContextReads } from './reads.js';

export function contextKey(context: Record<string, CedarValueJson>, reads: ContextReads): unknown {
  if (!reads.whole && reads.children.size === 0) return {};
  return projectValue(context, reads, testOutcomes);
}

const testOutcomes: TestedValue = (value, reads) => {
  // Tagged, so that outcomes ("t") never equal a value kept as it is ("v").
  // Cedar sees a lone surrogate as U+FFFD: such a string keeps its own entry.
  if (typeof value !== 'string' || !(value as unknown as { isWellFormed(): boolean }).isWellFormed())
    return ['v', value];
  let outcomes = '';
  for (const t of reads.tests)
    outcomes += (t.kind === 'eq' ? value === t.value : likeMatches(t.pattern, value)) ? '1' : '0';
  return ['t', outcomes];
};
