/**
 * Named IP lists (lists/NAME.txt in a bundle: one CIDR or address a line,
 * `#` comments) compiled into one path-compressed binary trie per address
 * family. A lookup walks at most 32 or 128 bits, touching one node per branching
 * point, whatever the number of entries; each node on the way that ends a
 * prefix contributes its lists, so overlapping ranges from several lists (or
 * from one) all match.
 */
import { maskWords, parseCidr, parseIp, type ParsedIp } from './ip-address.js';

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

class TrieNode {
  lists: number[] | null = null;
  zero: TrieNode | null = null;
  one: TrieNode | null = null;
  constructor(
    readonly key: Uint32Array,
    readonly length: number,
  ) {}
}

function bitAt(words: Uint32Array, i: number): number {
  return (words[i >>> 5] >>> (31 - (i & 31))) & 1;
}

/** Length of the common prefix of a and b, capped at `limit` bits. */
function commonBits(a: Uint32Array, b: Uint32Array, limit: number): number {
  let bits = 0;
  for (let i = 0; i < a.length && bits < limit; i++) {
    const x = (a[i] ^ b[i]) >>> 0;
    if (x === 0) {
      bits += 32;
    } else {
      bits += Math.clz32(x);
      break;
    }
  }
  return bits < limit ? bits : limit;
}

class PrefixTrie {
  readonly root: TrieNode;
  constructor(readonly bits: number) {
    this.root = new TrieNode(new Uint32Array(bits / 32), 0);
  }

  insert(key: Uint32Array, length: number, list: number): void {
    let node = this.root;
    for (;;) {
      if (node.length === length) {
        if (!node.lists) node.lists = [list];
        else if (!node.lists.includes(list)) node.lists.push(list);
        return;
      }
      const side = bitAt(key, node.length);
      const child = side ? node.one : node.zero;
      if (!child) {
        const leaf = new TrieNode(key, length);
        leaf.lists = [list];
        this.attach(node, side, leaf);
        return;
      }
      const common = commonBits(child.key, key, Math.min(child.length, length));
      if (common === child.length) {
        node = child;
        continue;
      }
      // The new prefix and the child part ways (or the new one is shorter): split the edge.
      const mid = new TrieNode(maskWords(key, common), common);
      this.attach(mid, bitAt(child.key, common), child);
      this.attach(node, side, mid);
      if (common === length) {
        mid.lists = [list];
      } else {
        const leaf = new TrieNode(key, length);
        leaf.lists = [list];
        this.attach(mid, bitAt(key, common), leaf);
      }
      return;
    }
  }

  private attach(parent: TrieNode, side: number, child: TrieNode): void {
    if (side) parent.one = child;
    else parent.zero = child;
  }

  /** Push the list indexes of every prefix containing `addr` into `out` (may repeat). */
  collect(addr: Uint32Array, out: number[]): void {
    let node: TrieNode | null = this.root;
    while (node) {
      if (node.length > 0 && commonBits(node.key, addr, node.length) !== node.length) return;
      if (node.lists) for (const l of node.lists) out.push(l);
      if (node.length === this.bits) return;
      node = bitAt(addr, node.length) ? node.one : node.zero;
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
        throw new IpListError(`${LISTS_DIR}${sorted[i].name}${LIST_SUFFIX}: a list name must be letters, digits, ".", "_" or "-"`);
      }
      if (i > 0 && sorted[i].name === sorted[i - 1].name) throw new IpListError(`list "${sorted[i].name}" is defined twice`);
    }
    const index = new IpListIndex(sorted.map((f) => f.name));
    sorted.forEach((file, listIndex) => {
      const lines = file.text.split(/\r?\n/);
      lines.forEach((raw, n) => {
        const hash = raw.indexOf('#');
        const line = (hash === -1 ? raw : raw.slice(0, hash)).trim();
        if (!line) return;
        const cidr = parseCidr(line);
        if (typeof cidr === 'string') throw new IpListError(`${LISTS_DIR}${file.name}${LIST_SUFFIX} line ${n + 1}: ${cidr}`);
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
