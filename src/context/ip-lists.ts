/**
 * Named IP lists (lists/NAME.txt in a bundle: one CIDR or address a line,
 * `#` comments) compiled into one path-compressed binary trie per address
 * family. A lookup walks at most 32 or 128 bits, touching one node per branching
 * point, whatever the number of entries; each node on the way that ends a
 * prefix contributes its lists, so overlapping ranges from several lists (or
 * from one) all match.
 */
import { parseCidr, parseIp, type ParsedIp } from './ip-address.js';

export const LISTS_DIR = 'lists/';
export const LIST_SUFFIX = '.txt';
/** List names become strings in policies; keep them plain. */
const LIST_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export interface IpListFile {
  /** List name, e.g. "tor-exit" for lists/tor-exit.txt. */
  name: string;
  text: string;
}

export class IpListError extends Error {}

function bitAt(words: readonly number[], i: number): number {
  return (words[i >>> 5] >>> (31 - (i & 31))) & 1;
}

const NONE = -1;
const INITIAL_NODES = 256;

/**
 * A path-compressed binary trie stored as parallel typed arrays (node i's key
 * words, prefix length, children, first list), not as one object per node: a
 * 100 000-entry list is ~200 000 nodes, and as objects their allocation and
 * garbage collection dominated compile time. Node 0 is the root (length 0).
 */
class PrefixTrie {
  private readonly width: number;
  private size = 1;
  private keys: Uint32Array;
  private lengths: Uint8Array;
  private zero: Int32Array;
  private one: Int32Array;
  private firstList: Int32Array;
  /** Lists past the first of a node; rare (the same prefix in several lists). */
  private readonly moreLists = new Map<number, number[]>();

  constructor(readonly bits: number) {
    this.width = bits / 32;
    this.keys = new Uint32Array(INITIAL_NODES * this.width);
    this.lengths = new Uint8Array(INITIAL_NODES);
    this.zero = new Int32Array(INITIAL_NODES).fill(NONE);
    this.one = new Int32Array(INITIAL_NODES).fill(NONE);
    this.firstList = new Int32Array(INITIAL_NODES).fill(NONE);
  }

  private node(key: readonly number[], length: number): number {
    if (this.size === this.lengths.length) this.grow();
    const n = this.size++;
    const base = n * this.width;
    // Store the key masked to its length, so comparisons see zeros past the prefix.
    for (let w = 0; w < this.width; w++) {
      const keep = length - w * 32;
      this.keys[base + w] = keep >= 32 ? key[w] : keep > 0 ? key[w] & (0xffffffff << (32 - keep)) : 0;
    }
    this.lengths[n] = length;
    return n;
  }

  private grow(): void {
    const oldCap = this.lengths.length;
    const cap = oldCap * 2;
    const widen = <T extends Uint32Array | Uint8Array | Int32Array>(
      old: T,
      make: (n: number) => T,
      fill?: number,
    ): T => {
      const next = make((old.length / oldCap) * cap);
      if (fill !== undefined) next.fill(fill);
      next.set(old as never);
      return next;
    };
    this.keys = widen(this.keys, (n) => new Uint32Array(n));
    this.lengths = widen(this.lengths, (n) => new Uint8Array(n));
    this.zero = widen(this.zero, (n) => new Int32Array(n), NONE);
    this.one = widen(this.one, (n) => new Int32Array(n), NONE);
    this.firstList = widen(this.firstList, (n) => new Int32Array(n), NONE);
  }

  /** Common prefix length of node n's key and `key`, capped at `limit` bits. */
  private common(n: number, key: readonly number[], limit: number): number {
    const base = n * this.width;
    let bits = 0;
    for (let w = 0; w < this.width && bits < limit; w++) {
      const x = (this.keys[base + w] ^ key[w]) >>> 0;
      if (x === 0) {
        bits += 32;
      } else {
        bits += Math.clz32(x);
        break;
      }
    }
    return Math.min(bits, limit);
  }

  private keyBit(n: number, i: number): number {
    return (this.keys[n * this.width + (i >>> 5)] >>> (31 - (i & 31))) & 1;
  }

  private addList(n: number, list: number): void {
    const first = this.firstList[n];
    if (first === NONE) {
      this.firstList[n] = list;
    } else if (first !== list) {
      const more = this.moreLists.get(n);
      if (!more) this.moreLists.set(n, [list]);
      else if (!more.includes(list)) more.push(list);
    }
  }

  private attach(parent: number, side: number, child: number): void {
    if (side) this.one[parent] = child;
    else this.zero[parent] = child;
  }

  insert(key: readonly number[], length: number, list: number): void {
    let n = 0;
    for (;;) {
      const len = this.lengths[n];
      if (len === length) {
        this.addList(n, list);
        return;
      }
      const side = bitAt(key, len);
      const child = side ? this.one[n] : this.zero[n];
      if (child === NONE) {
        const leaf = this.node(key, length);
        this.addList(leaf, list);
        this.attach(n, side, leaf);
        return;
      }
      const childLen = this.lengths[child];
      const common = this.common(child, key, Math.min(childLen, length));
      if (common === childLen) {
        n = child;
        continue;
      }
      // The new prefix and the child part ways (or the new one is shorter): split the edge.
      const mid = this.node(key, common);
      this.attach(mid, this.keyBit(child, common), child);
      this.attach(n, side, mid);
      if (common === length) {
        this.addList(mid, list);
      } else {
        const leaf = this.node(key, length);
        this.addList(leaf, list);
        this.attach(mid, bitAt(key, common), leaf);
      }
      return;
    }
  }

  /** Push the list indexes of every prefix containing `addr` into `out` (may repeat). */
  collect(addr: readonly number[], out: number[]): void {
    let n = 0;
    while (n !== NONE) {
      const len = this.lengths[n];
      if (len > 0 && this.common(n, addr, len) !== len) return;
      const first = this.firstList[n];
      if (first !== NONE) {
        out.push(first);
        const more = this.moreLists.get(n);
        if (more) for (const l of more) out.push(l);
      }
      if (len === this.bits) return;
      n = bitAt(addr, len) ? this.one[n] : this.zero[n];
    }
  }
}

export interface IpListSummary {
  name: string;
  entries: number;
}

/** The compiled lists of one policy set. Immutable once built. */
export class IpListIndex {
  private readonly v4 = new PrefixTrie(32);
  private readonly v6 = new PrefixTrie(128);
  private readonly entryCounts: number[];

  /** `names` in index order; sorted so match results come out in a stable order. */
  private constructor(readonly names: readonly string[]) {
    this.entryCounts = names.map(() => 0);
  }

  static readonly EMPTY = new IpListIndex([]);

  get size(): number {
    return this.names.length;
  }

  summary(): IpListSummary[] {
    return this.names.map((name, i) => ({ name, entries: this.entryCounts[i] }));
  }

  /** Names of the lists containing `ip`, in name order; [] for no match or a non-address. */
  match(ip: string | undefined): string[] {
    if (ip === undefined || this.names.length === 0) return [];
    const parsed = parseIp(ip);
    return parsed ? this.matchParsed([parsed]) : [];
  }

  /** Names of the lists containing any of the addresses. */
  matchParsed(addrs: ParsedIp[]): string[] {
    if (this.names.length === 0) return [];
    const hits: number[] = [];
    for (const a of addrs) (a.family === 4 ? this.v4 : this.v6).collect(a.words, hits);
    if (hits.length === 0) return [];
    if (hits.length > 1) hits.sort((x, y) => x - y);
    const out: string[] = [];
    let prev = -1;
    for (const h of hits) {
      if (h !== prev) out.push(this.names[h]);
      prev = h;
    }
    return out;
  }

  /**
   * Compile list files. A bad line refuses the whole set with file and line
   * named, like a Cedar syntax error would: a half-loaded blocklist is worse
   * than keeping the previous one.
   */
  static compile(files: IpListFile[]): IpListIndex {
    if (files.length === 0) return IpListIndex.EMPTY;
    const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (let i = 0; i < sorted.length; i++) {
      if (!LIST_NAME.test(sorted[i].name)) {
        throw new IpListError(
          `${LISTS_DIR}${sorted[i].name}${LIST_SUFFIX}: a list name must be letters, digits, ".", "_" or "-"`,
        );
      }
      if (i > 0 && sorted[i].name === sorted[i - 1].name)
        throw new IpListError(`list "${sorted[i].name}" is defined twice`);
    }
    const index = new IpListIndex(sorted.map((f) => f.name));
    sorted.forEach((file, listIndex) => {
      const lines = file.text.split(/\r?\n/);
      lines.forEach((raw, n) => {
        const hash = raw.indexOf('#');
        const line = (hash === -1 ? raw : raw.slice(0, hash)).trim();
        if (!line) return;
        const cidr = parseCidr(line);
        if (typeof cidr === 'string')
          throw new IpListError(`${LISTS_DIR}${file.name}${LIST_SUFFIX} line ${n + 1}: ${cidr}`);
        (cidr.family === 4 ? index.v4 : index.v6).insert(cidr.words, cidr.length, listIndex);
        index.entryCounts[listIndex]++;
      });
    });
    return index;
  }
}

/** "lists/tor-exit.txt" → "tor-exit"; undefined for any other path. Nested directories are refused. */
export function listNameOf(path: string): string | undefined {
  if (!path.startsWith(LISTS_DIR) || !path.endsWith(LIST_SUFFIX)) return undefined;
  const name = path.slice(LISTS_DIR.length, -LIST_SUFFIX.length);
  if (name.includes('/')) throw new IpListError(`${path}: lists live directly under ${LISTS_DIR} (no subdirectories)`);
  return name;
}
