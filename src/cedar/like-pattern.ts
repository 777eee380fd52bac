/**
 * Cedar's `like` in JavaScript, for the decision cache key (projection.ts):
 * when a string is only ever tested with `like` and `==` against literals,
 * requests whose strings pass and fail the same tests get the same answer, so
 * the key holds the outcomes instead of the string, and /api/items/1 and
 * /api/items/2 share an entry.
 *
 * Semantics (Cedar): the pattern is a sequence of literal characters and
 * wildcards; `*` matches any sequence of characters, including none; the whole
 * string must match. A test in test/unit/like-pattern.test.ts holds this
 * matcher to Cedar's own answers on random strings and patterns.
 *
 * The match is linear-ish and never backtracks exponentially: literal runs
 * between wildcards are found left to right with indexOf (greedy leftmost is
 * exact for a `*`-only glob), so a hostile path cannot make it slow.
 */
export type PatternElem = { Literal: string } | 'Wildcard';

export interface LikePattern {
  /** Literal runs between wildcards; `segments.length === wildcards + 1`. */
  segments: string[];
}

export function compileLike(elems: PatternElem[]): LikePattern {
  const segments = [''];
  for (const e of elems) {
    if (e === 'Wildcard') segments.push('');
    else segments[segments.length - 1] += e.Literal;
  }
  return { segments };
}

export function likeMatches(p: LikePattern, s: string): boolean {
  const segs = p.segments;
  const last = segs.length - 1;
  if (last === 0) return s === segs[0];
  const head = segs[0];
  const tail = segs[last];
  if (s.length < head.length + tail.length || !s.startsWith(head) || !s.endsWith(tail)) return false;
  let at = head.length;
  const end = s.length - tail.length;
  for (let i = 1; i < last; i++) {
    const seg = segs[i];
    if (seg === '') continue;
    const found = s.indexOf(seg, at);
    if (found === -1 || found + seg.length > end) return false;
    at = found + seg.length;
  }
  return true;
}
