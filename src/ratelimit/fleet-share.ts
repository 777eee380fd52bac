/**
 * Rate limits in bundle.yaml state a fleet-wide rate; each server enforces its
 * share of it, so "anonymous callers: 10/s" means 10/s at 1 server or at 20.
 *
 * The share divides both the refill rate and the burst by the number of live
 * servers (from the fleet heartbeat). The burst never drops below one request:
 * a bucket that cannot hold one token would refuse everyone, so at very low
 * rates a fleet of N admits up to N requests at once (said in docs/safety.md).
 * This is exact only when the load balancer spreads a key's requests evenly;
 * for exact global limits hand Envoy's rate-limit service the descriptors.
 */
import type { Rate } from './bucket-store.js';

/** The smallest burst a share may have: one request's worth. */
export const MIN_SHARE_BURST = 1;

/** Live servers as a count the arithmetic can use: unknown, zero or nonsense is a server alone (1). */
export function normaliseFleetSize(servers: number | undefined): number {
  return servers !== undefined && Number.isInteger(servers) && servers > 1 ? servers : 1;
}

/** One server's share of a fleet-wide rate. A single server (or no fleet) gets the rate itself. */
export function fleetShare(rate: Rate, servers: number): Rate {
  const n = normaliseFleetSize(servers);
  if (n === 1) return rate;
  return { requestsPerSecond: rate.requestsPerSecond / n, burst: Math.max(MIN_SHARE_BURST, rate.burst / n) };
}

/** Where the limiter reads the live server count; the fleet heartbeat reader implements it. */
export interface FleetSize {
  /** Live servers of this bundle's fleet, this one included; 1 without a fleet. */
  servers(): number;
}

export const SINGLE_SERVER: FleetSize = { servers: () => 1 };
