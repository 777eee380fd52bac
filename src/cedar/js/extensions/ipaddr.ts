/**
 * Cedar's `ipaddr` extension: `ip("10.0.0.1")`, `ip("10.0.0.0/24")`, IPv6 alike.
 *
 * Rules of Cedar 4.x, each checked against @cedar-policy/cedar-wasm (test/unit/cedar-extensions.test.ts):
 * - IPv4 is a dotted quad only: four decimal octets 0–255, 1–3 ASCII digits, no leading zero ("010.0.0.1" errors).
 * - IPv6 is the standard hex form: groups of 1–4 hex digits (either case, leading zeros allowed), at most one
 *   `::` standing for at least one zero group. No zone ids (`%eth0`), no brackets.
 * - A string with two or more `:` and two or more `.` is refused (IPv4 embedded in IPv6, `::ffff:1.2.3.4`).
 * - An optional `/prefix`: ASCII digits, no leading zero, at most 3 characters, ≤ 32 (IPv4) or ≤ 128 (IPv6).
 * - The value keeps the address as written and the prefix (absent = 32/128): `ip("10.0.0.1/24")` is not
 *   `ip("10.0.0.0/24")`, but `ip("10.0.0.1/32") == ip("10.0.0.1")`.
 * - `isInRange` compares the network/broadcast bounds of both ranges; IPv4 and IPv6 are never in each other's range.
 *   `isLoopback` and `isMulticast` are "the whole range lies in 127.0.0.0/8 (::1/128), 224.0.0.0/4 (ff00::/8)".
 * - No ordering: `<` on ipaddr is a type error.
 */
import { ExtensionCallError, type ExtensionValue, typeError, stringArg } from './extension-value.js';

export class IpAddr implements ExtensionValue {
  readonly extType = 'ipaddr' as const;
  constructor(
    readonly v6: boolean,
    /** The address bits as written (32 or 128 bits). */
    readonly addr: bigint,
    readonly prefix: number,
  ) {}

  get width(): number {
    return this.v6 ? 128 : 32;
  }

  equals(other: ExtensionValue): boolean {
    return other instanceof IpAddr && other.v6 === this.v6 && other.addr === this.addr && other.prefix === this.prefix;
  }

  hashKey(): string {
    return `ip:${this.v6 ? 6 : 4}:${this.addr.toString(16)}/${this.prefix}`;
  }

  /** Lowest and highest address of the range. */
  bounds(): [bigint, bigint] {
    const host = (1n << BigInt(this.width - this.prefix)) - 1n;
    return [this.addr & ~host, this.addr | host];
  }

  isInRange(other: IpAddr): boolean {
    if (this.v6 !== other.v6) return false;
    const [lo, hi] = this.bounds();
    const [olo, ohi] = other.bounds();
    return olo <= lo && hi <= ohi;
  }

  toString(): string {
    return `ip(${this.v6 ? 'v6' : 'v4'} ${this.addr.toString(16)}/${this.prefix})`;
  }
}

const DEC_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseV4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let out = 0n;
  for (const p of parts) {
    if (!DEC_OCTET.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out = (out << 8n) | BigInt(n);
  }
  return out;
}

function hexGroups(s: string): bigint[] | undefined {
  if (s === '') return [];
  const out: bigint[] = [];
  for (const g of s.split(':')) {
    if (!HEX_GROUP.test(g)) return undefined;
    out.push(BigInt(`0x${g}`));
  }
  return out;
}

function parseV6(s: string): bigint | undefined {
  let groups: bigint[];
  const gap = s.indexOf('::');
  if (gap < 0) {
    const all = hexGroups(s);
    if (all === undefined || all.length !== 8) return undefined;
    groups = all;
  } else {
    const head = hexGroups(s.slice(0, gap));
    const tail = hexGroups(s.slice(gap + 2));
    // `::` stands for at least one zero group.
    if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined;
    groups = [...head, ...Array<bigint>(8 - head.length - tail.length).fill(0n), ...tail];
  }
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

function parseAddress(s: string): { v6: boolean; addr: bigint } | undefined {
  const v4 = parseV4(s);
  if (v4 !== undefined) return { v6: false, addr: v4 };
  const v6 = parseV6(s);
  if (v6 !== undefined) return { v6: true, addr: v6 };
  return undefined;
}

function countOf(s: string, c: string): number {
  let n = 0;
  for (const ch of s) if (ch === c) n++;
  return n;
}

function ipError(message: string): ExtensionCallError {
  return new ExtensionCallError(`error while evaluating \`ipaddr\` extension function: ${message}`);
}

export function parseIpAddr(s: string): IpAddr {
  if (countOf(s, ':') >= 2 && countOf(s, '.') >= 2) {
    throw ipError(`We do not accept IPv4 embedded in IPv6 (e.g., ::ffff:127.0.0.1). Found: \`${s}\``);
  }
  const whole = parseAddress(s);
  if (whole) return new IpAddr(whole.v6, whole.addr, whole.v6 ? 128 : 32);
  const slash = s.indexOf('/');
  if (slash < 0) throw ipError(`invalid IP address: ${s}`);
  const addrText = s.slice(0, slash);
  const prefixText = s.slice(slash + 1);
  const addr = parseAddress(addrText);
  if (!addr) throw ipError(`invalid IP address: ${addrText}`);
  if (prefixText === '' || prefixText.length > 3 || !/^[0-9]+$/.test(prefixText)) {
    throw ipError(`invalid prefix \`${prefixText}\``);
  }
  if (prefixText.length > 1 && prefixText[0] === '0') throw ipError(`prefix \`${prefixText}\`: leading zero(s)`);
  const prefix = Number(prefixText);
  const limit = addr.v6 ? 128 : 32;
  if (prefix > limit) throw ipError(`prefix ${prefix} is larger than the limit ${limit}`);
  return new IpAddr(addr.v6, addr.addr, prefix);
}

export function asIpAddr(v: unknown): IpAddr {
  if (v instanceof IpAddr) return v;
  throw typeError('ipaddr', v);
}

const LOOPBACK_V4 = new IpAddr(false, 0x7f000000n, 8);
const LOOPBACK_V6 = new IpAddr(true, 1n, 128);
const MULTICAST_V4 = new IpAddr(false, 0xe0000000n, 4);
const MULTICAST_V6 = new IpAddr(true, 0xffn << 120n, 8);

export function isLoopback(ip: IpAddr): boolean {
  return ip.isInRange(ip.v6 ? LOOPBACK_V6 : LOOPBACK_V4);
}

export function isMulticast(ip: IpAddr): boolean {
  return ip.isInRange(ip.v6 ? MULTICAST_V6 : MULTICAST_V4);
}

export const IPADDR_FUNCTIONS: ReadonlyArray<[string, number, (args: readonly unknown[]) => unknown]> = [
  ['ip', 1, (a) => parseIpAddr(stringArg(a[0]))],
  ['isIpv4', 1, (a) => !asIpAddr(a[0]).v6],
  ['isIpv6', 1, (a) => asIpAddr(a[0]).v6],
  ['isLoopback', 1, (a) => isLoopback(asIpAddr(a[0]))],
  ['isMulticast', 1, (a) => isMulticast(asIpAddr(a[0]))],
  ['isInRange', 2, (a) => asIpAddr(a[0]).isInRange(asIpAddr(a[1]))],
];
