/**
 * Cut Cedar policy text into statements at top-level semicolons, so a large
 * file can be handed to Cedar's parser a few policies at a time (one
 * `policySetTextToParts` call over a 1,000-policy file holds the thread for
 * 50–500 ms here). A semicolon only ends a policy outside string literals and
 * `//` comments; that is all this scanner tracks. It never decides anything
 * on its own: the pieces go to Cedar, and if Cedar refuses one, the caller
 * parses the whole file instead, so a scanner mistake can cost time, never a
 * wrong answer.
 */
export function splitStatements(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i++;
      while (i < n && text.charCodeAt(i) !== 0x22) i += text.charCodeAt(i) === 0x5c /* \ */ ? 2 : 1;
      i++;
    } else if (c === 0x2f /* / */ && text.charCodeAt(i + 1) === 0x2f) {
      const eol = text.indexOf('\n', i);
      i = eol === -1 ? n : eol + 1;
    } else if (c === 0x3b /* ; */) {
      i++;
      out.push(text.slice(start, i));
      start = i;
    } else {
      i++;
    }
  }
  const rest = text.slice(start);
  // Trailing comments and blank lines belong to the last statement; anything else is left for Cedar to judge.
  if (out.length > 0 && isBlankOrComments(rest)) out[out.length - 1] += rest;
  else if (rest.length > 0) out.push(rest);
  return out;
}

function isBlankOrComments(s: string): boolean {
  return s.split('\n').every((line) => {
    const t = line.trim();
    return t === '' || t.startsWith('//');
  });
}

/** Group statements into pieces of at most `maxChars` (a single longer statement is its own piece). */
export function groupStatements(statements: string[], maxChars: number): string[] {
  const out: string[] = [];
  let current = '';
  for (const s of statements) {
    if (current && current.length + s.length > maxChars) {
      out.push(current);
      current = '';
    }
    current += s;
  }
  if (current) out.push(current);
  return out;
}
