import { z } from 'zod';

/** A whole number given as a number or a string of digits ("1e3" and "12abc" are refused, not coerced). */
export const wholeNumber = (min: number, max: number) =>
  z.union([z.number(), z.string()]).transform((v, ctx): number => {
    const n = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `expected a whole number from ${min} to ${max}, got "${v}"` });
      return z.NEVER;
    }
    return n;
  });
