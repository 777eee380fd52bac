/**
 * IP address and CIDR parsing into fixed-width bit strings (one 32-bit word
 * for IPv4, four for IPv6), the form the prefix trie walks. IPv4-mapped IPv6
 * addresses (::ffff:a.b.c.d) are folded to IPv4: a dual-stack listener reports
 * IPv4 clients that way, and a list entry for 203.0.113.0/24 must still match.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type IpFamily = 4 | 6;

export interface ParsedIp {
  family: IpFamily;
  /**
   * Big-endian unsigned 32-bit words: 1 for IPv4, 4 for IPv6. Plain arrays, not
   * Uint32Array: a typed array per address or trie node made compiling a
   * 100 000-entry list spend most of its time allocating and collecting them.
   */
  words: readonly number[];
}

export interface ParsedCidr extends ParsedIp {
  /** Prefix length in bits (0..32 or 0..128). */
  length: number;
}

export function familyBits(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

/** A dotted quad already checked by isIPv4, read digit by digit (no split: this runs per list line). */
function ipv4Word(s: string): number {
  let word = 0;
  let octet = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      word = word * 256 + octet;
      octet = 0;
    } else {
      octet = octet * 10 + (c - 48);
    }
  }
  return word * 256 + octet;
}

/** Eight 16-bit groups of a valid IPv6 literal (already checked by isIPv6). */
function ipv6Groups(s: string): number[] {
  let text = s;
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    // Embedded IPv4 ("::ffff:1.2.3.4", "64:ff9b::1.2.3.4"): rewrite as two hex groups.
    const w = ipv4Word(last);
    text = `${text.slice(0, lastColon + 1)}${(w >>> 16).toString(16)}:${(w & 0xffff).toString(16)}`;
  }
  const parse = (part: string): number[] => (part ? part.split(':').map((h) => parseInt(h, 16)) : []);
  const gap = text.indexOf('::');
  if (gap === -1) return parse(text);
  const left = parse(text.slice(0, gap));
  const right = parse(text.slice(gap + 2));
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/** Parse an address; undefined when it is not an IPv4 or IPv6 literal. Zone ids (%eth0) are refused. */
export function parseIp(s: string): ParsedIp | undefined {
  if (isIPv4(s)) return { family: 4, words: [ipv4Word(s)] };
  if (!isIPv6(s) || s.includes('%')) return undefined;
  const g = ipv6Groups(s);
  if (g.length !== 8) return undefined;
  const words = [0, 0, 0, 0];
  for (let i = 0; i < 4; i++) words[i] = ((g[2 * i] << 16) | g[2 * i + 1]) >>> 0;
  // ::ffff:a.b.c.d → a.b.c.d
  if (words[0] === 0 && words[1] === 0 && words[2] === 0xffff) return { family: 4, words: [words[3]] };
  return { family: 6, words };
}

/** Zero every bit past `length`. */
export function maskWords(words: readonly number[], length: number): number[] {
  const out = new Array<number>(words.length);
  for (let i = 0; i < words.length; i++) {
    const keep = length - i * 32;
    out[i] = keep >= 32 ? words[i] : keep > 0 ? (words[i] & (0xffffffff << (32 - keep))) >>> 0 : 0;
  }
  return out;
}

/**
 * "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128).
 * Host bits set past the prefix are an error: "10.1.2.3/8" is almost always a
 * typo, and silently widening it would block more than the author meant.
 */
export function parseCidr(s: string): ParsedCidr | string {
  const slash = s.indexOf('/');
  const addrText = slash === -1 ? s : s.slice(0, slash);
  const ip = parseIp(addrText);
  if (!ip) return `"${addrText}" is not an IPv4 or IPv6 address`;
  const mapped = ip.family === 4 && addrText.includes(':');
  const max = familyBits(ip.family);
  let length = max;
  if (slash !== -1) {
    const lenText = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lenText)) return `"${lenText}" is not a prefix length`;
    length = Number(lenText);
    // ::ffff:0:0/96 style entries count their prefix over 128 bits.
    if (mapped) length -= 96;
    if (length < 0 || length > max) return `prefix length /${lenText} is out of range for this address`;
  }
  const masked = maskWords(ip.words, length);
  if (masked.some((w, i) => w !== ip.words[i]))
    return `"${s}" has bits set past its /${slash === -1 ? max : s.slice(slash + 1)} prefix (did you mean ${formatMasked(ip.family, masked)}/${slash === -1 ? max : s.slice(slash + 1)}?)`;
  return { family: ip.family, words: masked, length };
}

function formatMasked(family: IpFamily, words: readonly number[]): string {
  if (family === 4) return [24, 16, 8, 0].map((s) => (words[0] >>> s) & 0xff).join('.');
  const groups: string[] = [];
  for (const w of words) groups.push((w >>> 16).toString(16), (w & 0xffff).toString(16));
  return groups.join(':');
}
