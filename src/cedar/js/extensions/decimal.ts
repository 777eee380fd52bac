/**
 * Cedar's `decimal` extension: fixed point with 4 fractional digits over an i64
 * (−922337203685477.5808 … 922337203685477.5807).
 *
 * Rules of Cedar 4.x, checked against @cedar-policy/cedar-wasm:
 * - Text is `-?digits.digits`: a `.` and at least one digit on each side ("1", "1.", ".5", "+1.0", "1e2" error),
 *   1–4 fractional digits ("1.23456" errors), any number of leading zeros ("01.0" is fine).
 * - Out of the i64 range is an error (overflow), as are non-ASCII digits.
 * - `==` compares the value: decimal("1.0") == decimal("1.0000"), decimal("-0.0") == decimal("0.0").
 * - Ordering only through lessThan/lessThanOrEqual/greaterThan/greaterThanOrEqual; `<` on decimals is a type error.
 */
import {
  EXTENSION_BRAND,
  ExtensionCallError,
  type ExtensionValue,
  fitsI64,
  stringArg,
  typeError,
} from './extension-value.js';

export class Decimal implements ExtensionValue {
  readonly [EXTENSION_BRAND] = true;
  readonly extType = 'decimal' as const;
  /** The value times 10,000. */
  constructor(readonly scaled: bigint) {}

  equals(other: ExtensionValue): boolean {
    return other instanceof Decimal && other.scaled === this.scaled;
  }

  hashKey(): string {
    return `decimal:${this.scaled}`;
  }

  toString(): string {
    const neg = this.scaled < 0n;
    const abs = neg ? -this.scaled : this.scaled;
    return `${neg ? '-' : ''}${abs / 10_000n}.${(abs % 10_000n).toString().padStart(4, '0')}`;
  }
}

const DECIMAL_TEXT = /^(-?)([0-9]+)\.([0-9]+)$/;

function decimalError(message: string): ExtensionCallError {
  return new ExtensionCallError(`error while evaluating \`decimal\` extension function: ${message}`);
}

export function parseDecimal(s: string): Decimal {
  const m = DECIMAL_TEXT.exec(s);
  if (!m) throw decimalError(`\`${s}\` is not a well-formed decimal value`);
  const [, sign, whole, frac] = m;
  if (frac.length > 4) throw decimalError(`too many digits after the decimal in \`${s}\``);
  const magnitude = BigInt(whole) * 10_000n + BigInt(frac.padEnd(4, '0'));
  const scaled = sign === '-' ? -magnitude : magnitude;
  if (!fitsI64(scaled)) throw decimalError('overflow when converting to decimal');
  return new Decimal(scaled);
}

export function asDecimal(v: unknown): Decimal {
  if (v instanceof Decimal) return v;
  throw typeError('decimal', v);
}

export const DECIMAL_FUNCTIONS: ReadonlyArray<[string, number, (args: readonly unknown[]) => unknown]> = [
  ['decimal', 1, (a) => parseDecimal(stringArg(a[0]))],
  ['lessThan', 2, (a) => asDecimal(a[0]).scaled < asDecimal(a[1]).scaled],
  ['lessThanOrEqual', 2, (a) => asDecimal(a[0]).scaled <= asDecimal(a[1]).scaled],
  ['greaterThan', 2, (a) => asDecimal(a[0]).scaled > asDecimal(a[1]).scaled],
  ['greaterThanOrEqual', 2, (a) => asDecimal(a[0]).scaled >= asDecimal(a[1]).scaled],
];
