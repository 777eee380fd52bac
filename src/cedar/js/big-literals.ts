/**
 * Exact values of integer literals past 2^53. Cedar's JSON form of a policy
 * arrives as JS numbers, so `9223372036854775807` reads back as
 * 9223372036854775808: the digits are taken from the policy's text instead.
 * The text is scanned for digit runs outside strings and comments; a JSON value
 * is matched to the run(s) whose magnitude rounds to it, and only when they all
 * name the same integer (otherwise the policy is left to wasm).
 */
import type { BigLiterals } from './compile-policy.js';

export function bigLiteralsOf(text: string): BigLiterals {
  let runs: bigint[] | undefined;
  return (approx: number): bigint | undefined => {
    runs ??= digitRuns(text);
    const magnitude = Math.abs(approx);
    let found: bigint | undefined;
    for (const r of runs) {
      if (Number(r) !== magnitude) continue;
      if (found !== undefined && found !== r) return undefined;
      found = r;
    }
    if (found === undefined) return undefined;
    return approx < 0 ? -found : found;
  };
}

/** Unsigned integer literals of the text (long ones only: short ones are exact as numbers). */
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
      if (i - start >= 16) out.push(BigInt(text.slice(start, i)));
    } else {
      i++;
    }
  }
  return out;
}
