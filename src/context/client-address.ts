/**
 * The client address behind trusted proxies, from x-forwarded-for.
 *
 * Each proxy appends the address it received the request from, so with N
 * trusted proxies in front of us the Nth entry from the right was written by
 * the outermost one we trust and names the real client. Anything further left
 * was written by the client itself and proves nothing. This is Envoy's
 * `xff_num_trusted_hops` reading, counted from our side.
 */
import { parseIp, type ParsedIp } from './ip-address.js';

export const XFF_HEADER = 'x-forwarded-for';
/** More hops than this is a misconfiguration, not a topology. */
export const MAX_TRUSTED_HOPS = 16;

/** "203.0.113.7", "203.0.113.7:4711", "[2001:db8::1]:443" or "2001:db8::1" → the address. */
function stripPort(entry: string): string {
  if (entry.startsWith('[')) {
    const end = entry.indexOf(']');
    return end === -1 ? entry : entry.slice(1, end);
  }
  const colon = entry.indexOf(':');
  if (colon !== -1 && entry.indexOf(':', colon + 1) === -1) return entry.slice(0, colon);
  return entry;
}

/**
 * The client address the `trustedHops`-th proxy from the right vouches for,
 * or undefined when hops is 0, the header is missing, it has fewer entries
 * than trusted proxies (the request skipped one), or that entry is not an address.
 */
export function forwardedClientIp(xff: string | undefined, trustedHops: number): ParsedIp | undefined {
  const entry = vouchedEntry(xff, trustedHops);
  return entry === undefined ? undefined : parseIp(entry);
}

/** The same client address as text (for the decision log), or undefined. */
export function forwardedClientAddress(xff: string | undefined, trustedHops: number): string | undefined {
  const entry = vouchedEntry(xff, trustedHops);
  return entry !== undefined && parseIp(entry) ? entry : undefined;
}

function vouchedEntry(xff: string | undefined, trustedHops: number): string | undefined {
  if (trustedHops <= 0 || !xff) return undefined;
  const entries = xff.split(',');
  if (entries.length < trustedHops) return undefined;
  return stripPort(entries[entries.length - trustedHops].trim());
}
