/**
 * What every Cedar extension value shares, and the one error type an extension
 * call raises. Kept apart from index.ts so the per-type modules do not import
 * the registry that imports them.
 */

/** A Cedar evaluation error raised by an extension call: wrong type, bad literal, overflow. */
export class ExtensionCallError extends Error {
  override readonly name = 'ExtensionCallError';
}

export type ExtensionTypeName = 'ipaddr' | 'decimal' | 'datetime' | 'duration';

export interface ExtensionValue {
  readonly extType: ExtensionTypeName;
  /** Cedar `==` between two extension values; values of different types are never equal. */
  equals(other: ExtensionValue): boolean;
  /** Equal values ⇔ equal keys (sets, `contains`). */
  hashKey(): string;
}

export function isExtensionValue(v: unknown): v is ExtensionValue {
  return typeof v === 'object' && v !== null && typeof (v as { extType?: unknown }).extType === 'string' && 'hashKey' in v;
}

/** Cedar's name of a value's type, for error messages like Cedar's `type error: expected decimal, got long`. */
export function cedarTypeName(v: unknown): string {
  if (typeof v === 'bigint' || typeof v === 'number') return 'long';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (isExtensionValue(v)) return v.extType;
  if (Array.isArray(v) || v instanceof Set) return 'set';
  return 'record or entity';
}

export function typeError(expected: string, got: unknown): ExtensionCallError {
  return new ExtensionCallError(`type error: expected ${expected}, got ${cedarTypeName(got)}`);
}

/** The string argument of a constructor (`ip`, `decimal`, `datetime`, `duration`). */
export function stringArg(v: unknown): string {
  if (typeof v !== 'string') throw typeError('string', v);
  return v;
}

export const I64_MIN = -(2n ** 63n);
export const I64_MAX = 2n ** 63n - 1n;

export function fitsI64(v: bigint): boolean {
  return v >= I64_MIN && v <= I64_MAX;
}
