/**
 * Cedar's `duration` extension: a signed count of milliseconds in an i64.
 *
 * Rules of Cedar 4.x, checked against @cedar-policy/cedar-wasm:
 * - Text is an optional `-` then units in the order d, h, m, s, ms, each at most once, each with one or more
 *   ASCII digits (leading zeros fine): "1d2h3m4s5ms", "-1d2h" (the sign covers all units), "90m".
 *   Empty, "-", "+1d", "1D", "1h1d", "1d-2h", "1.5d", spaces: errors.
 * - The total must fit an i64 ("-9223372036854775808ms" is fine, "106751991168d" overflows): error otherwise.
 * - toMilliseconds/toSeconds/toMinutes/toHours/toDays return a Long, truncated toward zero (duration("-90m").toHours() == -1).
 * - `==` and `<` `<=` `>` `>=` compare milliseconds; duration("1d") == duration("24h").
 */
import {
  EXTENSION_BRAND,
  ExtensionCallError,
  type ExtensionValue,
  fitsI64,
  stringArg,
  typeError,
} from './extension-value.js';

export class Duration implements ExtensionValue {
  readonly [EXTENSION_BRAND] = true;
  readonly extType = 'duration' as const;
  constructor(readonly ms: bigint) {}

  equals(other: ExtensionValue): boolean {
    return other instanceof Duration && other.ms === this.ms;
  }

  hashKey(): string {
    return `duration:${this.ms}`;
  }

  toString(): string {
    return `duration("${this.ms}ms")`;
  }
}

const DURATION_TEXT = /^(-?)(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?$/;
const UNIT_MS = [86_400_000n, 3_600_000n, 60_000n, 1_000n, 1n];

function durationError(message: string): ExtensionCallError {
  return new ExtensionCallError(`error while evaluating \`duration\` extension function: ${message}`);
}

export function parseDuration(s: string): Duration {
  const m = DURATION_TEXT.exec(s);
  if (!m || m.slice(2).every((g) => g === undefined)) throw durationError('invalid duration pattern');
  let total = 0n;
  for (let i = 0; i < UNIT_MS.length; i++) {
    const digits = m[i + 2];
    if (digits !== undefined) total += BigInt(digits) * UNIT_MS[i];
  }
  if (m[1] === '-') total = -total;
  if (!fitsI64(total)) throw durationError('Duration overflows internal representation');
  return new Duration(total);
}

export function asDuration(v: unknown): Duration {
  if (v instanceof Duration) return v;
  throw typeError('duration', v);
}

export const DURATION_FUNCTIONS: ReadonlyArray<[string, number, (args: readonly unknown[]) => unknown]> = [
  ['duration', 1, (a) => parseDuration(stringArg(a[0]))],
  // bigint division truncates toward zero, as Cedar's does.
  ['toMilliseconds', 1, (a) => asDuration(a[0]).ms],
  ['toSeconds', 1, (a) => asDuration(a[0]).ms / 1_000n],
  ['toMinutes', 1, (a) => asDuration(a[0]).ms / 60_000n],
  ['toHours', 1, (a) => asDuration(a[0]).ms / 3_600_000n],
  ['toDays', 1, (a) => asDuration(a[0]).ms / 86_400_000n],
];
