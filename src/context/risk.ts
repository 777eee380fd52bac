/**
 * Risk score from an upstream risk engine: an integer 0–100 in a configured
 * header, believed only when the request comes from one of the configured
 * source principals (the workload that runs the risk engine or the gateway
 * that calls it). From anyone else the header is just something a client typed.
 *
 * From a trusted sender, a value we cannot read fails closed: a header sent
 * twice (`0,95`: the client's copy plus the gateway's appended one), a
 * malformed value (`95.0`, `+95`, ``) or one out of range (`101`) is the
 * highest risk, never "absent" (which `context has risk && …` would let through).
 */
import type { RequestModel } from '../envoy/request-model.js';

export const MAX_RISK = 100;
/** What an unreadable score from a trusted sender counts as. */
export const UNREADABLE_RISK = MAX_RISK;

export interface RiskSettings {
  /** Lower-case header name. */
  header: string;
  /** mTLS principals (SPIFFE ids) whose risk header is believed. */
  trustedPrincipals: ReadonlySet<string>;
}

/** The score; undefined when not configured, not sent, or sent by an untrusted principal. */
export function riskScore(input: RequestModel, settings: RiskSettings | undefined): number | undefined {
  if (!settings) return undefined;
  const raw = input.headers[settings.header];
  if (raw === undefined || !settings.trustedPrincipals.has(input.source.principal)) return undefined;
  return parseRisk(raw);
}

/** One integer 0–100 (surrounding spaces allowed); anything else is UNREADABLE_RISK. Repeated headers arrive joined by ",". */
export function parseRisk(raw: string): number {
  const text = raw.trim();
  if (!/^\d{1,3}$/.test(text)) return UNREADABLE_RISK;
  const n = Number(text);
  return n <= MAX_RISK ? n : UNREADABLE_RISK;
}
