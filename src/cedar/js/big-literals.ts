/**
 * Exact values of integer literals past 2^53. Cedar's JSON form of a policy
 * arrives as JS numbers, so `9223372036854775807` reads back as
 * 9223372036854775808: the digits are taken from the policy's text instead.
 * The text is scanned for digit runs outside strings and comments; the JSON
 * form's large values are matched to them in order, each to the next run,
 * which must round to it (otherwise the policy is left to wasm).
 */
import type { BigLiterals } from './compile-policy.js';

export function bigLiteralsOf(text: string): BigLiterals {
  let runs: bigint[] | undefined;
  let next = 0;
  return (approx: number): bigint | undefined => {
    runs ??= digitRuns(text);
    // The compiler asks in source order (left to right), so each question takes the next run; any mismatch refuses.
    const r = runs[next++];
    if (r === undefined || Number(r) !== Math.abs(approx)) return undefined;
    return approx < 0 ? -r : r;
  };
}

/** Unsigned integer literals of the text past 2^53, in source order (smaller ones are exact as numbers). */
function digitRuns(text: string): bigint[] {
  const out: bigint[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    if (c === '"') {
      i++;
      while (i < n && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < n && text[i] !== '\n') i++;
    } else if (/[A-Za-z_]/.test(c)) {
      while (i < n && /[A-Za-z0-9_]/.test(text[i])) i++;
    } else if (c >= '0' && c <= '9') {
      const start = i;
      while (i < n && text[i] >= '0' && text[i] <= '9') i++;
      const v = i - start >= 16 ? BigInt(text.slice(start, i)) : 0n;
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) out.push(v);
    } else {
      i++;
    }
  }
  return out;
}
