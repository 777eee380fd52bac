/**
 * Cedar's `datetime` extension: milliseconds since the Unix epoch (UTC) in an i64.
 *
 * Rules of Cedar 4.x, checked against @cedar-policy/cedar-wasm:
 * - Accepted texts: "YYYY-MM-DD", "YYYY-MM-DDThh:mm:ssZ", "YYYY-MM-DDThh:mm:ss.sssZ", "YYYY-MM-DDThh:mm:ss(+|-)hhmm",
 *   "YYYY-MM-DDThh:mm:ss.sss(+|-)hhmm". Exactly 4-digit years (0000–9999), 2-digit fields, exactly 3 millisecond
 *   digits, upper-case `T` and `Z`, ASCII digits only, no `+01:00`, no `+01`, no spaces.
 * - Real calendar dates only (2023-02-29, 1900-02-29, 2024-04-31, month 00/13, day 00 error; 2000-02-29 and
 *   2024-02-29 are fine); hours 00–23, minutes and seconds 00–59 (no 24:00:00, no leap second 23:59:60);
 *   offsets hh 00–23 and mm 00–59 ("+2359" fine, "+2400", "+0060" error). A `+hhmm` offset means local time ahead
 *   of UTC: "T01:00:00+0100" is midnight UTC.
 * - offset(duration) and durationSince(datetime) error when the i64 overflows.
 * - toDate() rounds down to a UTC midnight (1969-12-31T23:59:59.999Z → 1969-12-31), an error when that underflows
 *   the i64; toTime() is the non-negative time since that midnight, as a duration.
 * - `==` and `<` `<=` `>` `>=` compare the instant: datetime("2024-01-01") == datetime("2024-01-01T01:00:00+0100").
 */
import { Duration, asDuration } from './duration.js';
import {
  EXTENSION_BRAND,
  ExtensionCallError,
  type ExtensionValue,
  fitsI64,
  stringArg,
  typeError,
} from './extension-value.js';

export class DateTime implements ExtensionValue {
  readonly [EXTENSION_BRAND] = true;
  readonly extType = 'datetime' as const;
  constructor(readonly ms: bigint) {}

  equals(other: ExtensionValue): boolean {
    return other instanceof DateTime && other.ms === this.ms;
  }

  hashKey(): string {
    return `datetime:${this.ms}`;
  }

  toString(): string {
    return `datetime(${this.ms}ms since epoch)`;
  }
}

const DAY_MS = 86_400_000n;
const DATE_TEXT = /^([0-9]{4})-([0-9]{2})-([0-9]{2})/;
const TIME_TEXT = /^T([0-9]{2}):([0-9]{2}):([0-9]{2})/;
const ZONE_TEXT = /^(?:\.([0-9]{3}))?(?:(Z)|([+-])([0-9]{2})([0-9]{2}))$/;

function datetimeError(message: string): ExtensionCallError {
  return new ExtensionCallError(`error while evaluating \`datetime\` extension function: ${message}`);
}

function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(y: number, m: number): number {
  return m === 2 && isLeapYear(y) ? 29 : MONTH_DAYS[m - 1];
}

/** Days from 1970-01-01 to a proleptic Gregorian date (exact for years 0–9999). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const mp = (m + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

export function parseDateTime(s: string): DateTime {
  const date = DATE_TEXT.exec(s);
  if (!date) throw datetimeError('invalid date pattern');
  const [y, mo, d] = [Number(date[1]), Number(date[2]), Number(date[3])];
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) throw datetimeError(`invalid date: ${date[0]}`);
  const dayMs = BigInt(daysFromCivil(y, mo, d)) * DAY_MS;
  if (s.length === 10) return new DateTime(dayMs);

  const rest = s.slice(10);
  const time = TIME_TEXT.exec(rest);
  if (!time) throw datetimeError('invalid hour/minute/second pattern');
  const [h, mi, sec] = [Number(time[1]), Number(time[2]), Number(time[3])];
  if (h > 23 || mi > 59 || sec > 59) throw datetimeError(`invalid hour/minute/second: ${rest.slice(1, 9)}`);
  const zone = ZONE_TEXT.exec(rest.slice(9));
  if (!zone) throw datetimeError('invalid millisecond and/or offset pattern');
  const millis = zone[1] === undefined ? 0 : Number(zone[1]);
  let offsetMs = 0;
  if (zone[2] === undefined) {
    const [oh, om] = [Number(zone[4]), Number(zone[5])];
    if (oh > 23 || om > 59) throw datetimeError(`invalid offset range: ${zone[4]}${zone[5]}`);
    offsetMs = (oh * 3_600_000 + om * 60_000) * (zone[3] === '-' ? -1 : 1);
  }
  const local = h * 3_600_000 + mi * 60_000 + sec * 1_000 + millis;
  return new DateTime(dayMs + BigInt(local - offsetMs));
}

export function asDateTime(v: unknown): DateTime {
  if (v instanceof DateTime) return v;
  throw typeError('datetime', v);
}

/** Euclidean split of an instant into its UTC day start and the time since. */
function floorDay(ms: bigint): [bigint, bigint] {
  let rem = ms % DAY_MS;
  if (rem < 0n) rem += DAY_MS;
  return [ms - rem, rem];
}

function offset(dt: DateTime, d: Duration): DateTime {
  const ms = dt.ms + d.ms;
  if (!fitsI64(ms))
    throw new ExtensionCallError('error while evaluating `offset` extension function: overflows when adding an offset');
  return new DateTime(ms);
}

function durationSince(dt: DateTime, other: DateTime): Duration {
  const ms = dt.ms - other.ms;
  if (!fitsI64(ms)) {
    throw new ExtensionCallError(
      'error while evaluating `durationSince` extension function: overflows when computing the duration',
    );
  }
  return new Duration(ms);
}

function toDate(dt: DateTime): DateTime {
  const [day] = floorDay(dt.ms);
  if (!fitsI64(day))
    throw new ExtensionCallError(
      'error while evaluating `toDate` extension function: overflows when computing the date',
    );
  return new DateTime(day);
}

function toTime(dt: DateTime): Duration {
  return new Duration(floorDay(dt.ms)[1]);
}

export const DATETIME_FUNCTIONS: ReadonlyArray<[string, number, (args: readonly unknown[]) => unknown]> = [
  ['datetime', 1, (a) => parseDateTime(stringArg(a[0]))],
  ['offset', 2, (a) => offset(asDateTime(a[0]), asDuration(a[1]))],
  ['durationSince', 2, (a) => durationSince(asDateTime(a[0]), asDateTime(a[1]))],
  ['toDate', 1, (a) => toDate(asDateTime(a[0]))],
  ['toTime', 1, (a) => toTime(asDateTime(a[0]))],
];
