/**
 * Risk score from an upstream risk engine: an integer 0–100 in a configured
 * header, believed only when the request comes from one of the configured
 * source principals (the workload that runs the risk engine or the gateway
 * that calls it). From anyone else the header is just something a client typed.
 */
import type { RequestModel } from '../envoy/request-model.js';

export const MAX_RISK = 100;

export interface RiskSettings {
  /** Lower-case header name. */
  header: string;
  /** mTLS principals (SPIFFE ids) whose risk header is believed. */
  trustedPrincipals: ReadonlySet<string>;
}

/** The score, or undefined when not configured, untrusted, missing or not an integer 0–100. */
export function riskScore(input: RequestModel, settings: RiskSettings | undefined): number | undefined {
  if (!settings) return undefined;
  const raw = input.headers[settings.header];
  if (raw === undefined || !settings.trustedPrincipals.has(input.source.principal)) return undefined;
  const text = raw.trim();
  if (!/^\d{1,3}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= MAX_RISK ? n : undefined;
}
