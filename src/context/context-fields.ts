/**
 * The context fields the server adds to every Cedar request besides what
 * Envoy sent: matching IP lists, risk, load, local hour and weekday. One
 * synchronous function of the request, the active bundle's lists and
 * timezone (passed in: `FieldSources`) and the server's settings, so `authz check` and the server
 * compute the same values. docs/context.md documents each field.
 */
import type { RequestModel } from '../envoy/request-model.js';
import type { IpListIndex } from './ip-lists.js';
import { forwardedClientIp, XFF_HEADER } from './client-address.js';
import { parseIp, type ParsedIp } from './ip-address.js';
import { NO_LOAD, type LoadSource } from './server-load.js';
import { riskScore, type RiskSettings } from './risk.js';
import { UTC, type LocalTimeZone } from './time-fields.js';

export interface ContextFields {
  /** context.source.lists: names of the IP lists containing the source (or trusted client) address. */
  sourceLists: string[];
  /** context.risk, absent when untrusted or missing. */
  risk?: number;
  /** context.load, 0–100. */
  load: number;
  /** context.hour, 0–23 in the bundle's timezone. */
  hour: number;
  /** context.weekday, 1 (Monday) … 7 (Sunday) in the bundle's timezone. */
  weekday: number;
}

export interface ContextFieldSettings {
  /** Proxies in front of us whose x-forwarded-for entries we believe (0: ignore the header). */
  trustedHops: number;
  risk?: RiskSettings;
  load: LoadSource;
}

/** What the fields are computed against: the active bundle's IP lists and timezone (an `ActiveBundle` is one). */
export interface FieldSources {
  /** IP lists for context.source.lists (none when absent). */
  readonly ipLists?: IpListIndex;
  /** Timezone of context.hour / context.weekday (UTC when absent). */
  readonly timeZone?: LocalTimeZone;
}

export const DEFAULT_FIELD_SETTINGS: ContextFieldSettings = Object.freeze({ trustedHops: 0, load: NO_LOAD });

const NO_LISTS: string[] = [];

export function contextFields(
  input: RequestModel,
  set: FieldSources,
  settings: ContextFieldSettings = DEFAULT_FIELD_SETTINGS,
): ContextFields {
  const { hour, weekday } = (set.timeZone ?? UTC).fields(input.timeMs);
  const fields: ContextFields = {
    sourceLists: matchLists(input, set, settings.trustedHops),
    load: settings.load.current(),
    hour,
    weekday,
  };
  const risk = riskScore(input, settings.risk);
  if (risk !== undefined) fields.risk = risk;
  return fields;
}

function matchLists(input: RequestModel, set: FieldSources, trustedHops: number): string[] {
  const lists = set.ipLists;
  if (!lists || lists.size === 0) return NO_LISTS;
  const addrs: ParsedIp[] = [];
  const source = input.source.ip ? parseIp(input.source.ip) : undefined;
  if (source) addrs.push(source);
  const client = forwardedClientIp(input.headers[XFF_HEADER], trustedHops);
  if (client) addrs.push(client);
  return addrs.length > 0 ? lists.matchParsed(addrs) : NO_LISTS;
}
