/**
 * "Did you mean …?" for names a user typed: commands, flags, services,
 * entity types, setting keys. One mechanism, so every refusal of a typo reads
 * the same way wherever it happens.
 */

/** Edits (insert, delete, substitute, swap neighbours) between two strings. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      // A swap of two neighbours ("ordres" for "orders") is one typo, not two.
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/**
 * The candidate closest to `input`, when it is close enough to be a typo of
 * it: at most a third of the input's length in edits (at least one), the
 * same word in another case, or its first three or more letters. Ties go to
 * the first candidate.
 */
export function closestName(input: string, candidates: Iterable<string>): string | undefined {
  const lower = input.toLowerCase();
  const limit = Math.max(1, Math.floor(input.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    if (c === input) continue;
    const candidate = c.toLowerCase();
    // A cut-short name ("Anon" for "Anonymous") is a typo too, once it is long enough to be unambiguous.
    const distance =
      candidate === lower
        ? 0
        : lower.length >= 3 && candidate.startsWith(lower)
          ? limit
          : editDistance(lower, candidate);
    if (distance <= limit && distance < bestDistance) {
      best = c;
      bestDistance = distance;
    }
  }
  return best;
}

/** `; did you mean "x"?` (formatted by `quote`), or "" when nothing is close. */
export function didYouMean(
  input: string,
  candidates: Iterable<string>,
  quote: (name: string) => string = (n) => `"${n}"`,
): string {
  const best = closestName(input, candidates);
  return best === undefined ? '' : `; did you mean ${quote(best)}?`;
}
