/**
 * `context.hour` (0–23) and `context.weekday` (ISO: 1 = Monday … 7 = Sunday)
 * in the bundle's timezone (bundle.yaml `timezone`, default UTC).
 *
 * Intl formatting costs a few microseconds, so the answer is memoised per
 * 15-minute slice of UTC time: every zone's offset is a multiple of 15 minutes
 * and changes (DST) happen on such boundaries, so the local hour and weekday
 * are constant inside one slice.
 */
export const DEFAULT_TIMEZONE = 'UTC';
const SLICE_MS = 15 * 60 * 1000;
const ISO_WEEKDAY: Record<string, number> = { Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6, Sun: 7 };

export interface TimeFields {
  hour: number;
  weekday: number;
}

export function isValidTimezone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export class LocalTimeZone {
  private readonly format: Intl.DateTimeFormat;
  private slice = Number.NaN;
  private fieldsOfSlice: TimeFields = { hour: 0, weekday: 1 };

  /** Throws RangeError for a name Intl does not know. */
  constructor(readonly name: string = DEFAULT_TIMEZONE) {
    this.format = new Intl.DateTimeFormat('en-US', {
      timeZone: name,
      hourCycle: 'h23',
      hour: 'numeric',
      weekday: 'short',
    });
  }

  fields(ms: number): TimeFields {
    const slice = Math.floor(ms / SLICE_MS);
    if (slice !== this.slice) {
      this.fieldsOfSlice = this.compute(slice * SLICE_MS);
      this.slice = slice;
    }
    return this.fieldsOfSlice;
  }

  private compute(ms: number): TimeFields {
    let hour = 0;
    let weekday = 1;
    for (const part of this.format.formatToParts(ms)) {
      if (part.type === 'hour') hour = Number(part.value) % 24;
      else if (part.type === 'weekday') weekday = ISO_WEEKDAY[part.value] ?? 1;
    }
    return Object.freeze({ hour, weekday });
  }
}

export const UTC = new LocalTimeZone(DEFAULT_TIMEZONE);
