import { describe, expect, it } from 'vitest';
import { parseCidr, parseIp } from '../../src/context/ip-address.js';
import { forwardedClientIp } from '../../src/context/client-address.js';
import { IpListError, IpListIndex, listNameOf } from '../../src/context/ip-lists.js';
import { cedarIp } from '../../src/envoy/check-request.js';

const hex = (w: readonly number[] | undefined) =>
  w ? [...w].map((x) => x.toString(16).padStart(8, '0')).join(' ') : undefined;

describe('parseIp', () => {
  it.each([
    { name: 'IPv4', input: '192.0.2.1', family: 4, words: 'c0000201' },
    {
      name: 'IPv6 full',
      input: '2001:0db8:0000:0000:0000:0000:0000:0001',
      family: 6,
      words: '20010db8 00000000 00000000 00000001',
    },
    { name: 'IPv6 compressed', input: '2001:db8::1', family: 6, words: '20010db8 00000000 00000000 00000001' },
    { name: 'IPv6 leading ::', input: '::1', family: 6, words: '00000000 00000000 00000000 00000001' },
    { name: 'IPv6 trailing ::', input: 'fe80::', family: 6, words: 'fe800000 00000000 00000000 00000000' },
    {
      name: 'IPv6 with embedded IPv4',
      input: '64:ff9b::192.0.2.33',
      family: 6,
      words: '0064ff9b 00000000 00000000 c0000221',
    },
    { name: 'IPv4-mapped IPv6 folds to IPv4', input: '::ffff:192.0.2.1', family: 4, words: 'c0000201' },
    { name: 'IPv4-mapped in hex folds to IPv4', input: '::ffff:c000:201', family: 4, words: 'c0000201' },
  ])('$name', ({ input, family, words }) => {
    const ip = parseIp(input);
    expect(ip?.family).toBe(family);
    expect(hex(ip?.words)).toBe(words);
  });

  it.each(['', 'localhost', '256.0.0.1', '1.2.3', '2001:db8::1::2', 'fe80::1%eth0', '01.2.3.4'])(
    'refuses %j',
    (input) => {
      expect(parseIp(input)).toBeUndefined();
    },
  );
});

describe('parseCidr', () => {
  it.each([
    { input: '10.0.0.0/8', length: 8, family: 4 },
    { input: '0.0.0.0/0', length: 0, family: 4 },
    { input: '192.0.2.7', length: 32, family: 4 },
    { input: '2001:db8::/32', length: 32, family: 6 },
    { input: '::/0', length: 0, family: 6 },
    { input: '2001:db8::1', length: 128, family: 6 },
    { input: '::ffff:10.0.0.0/104', length: 8, family: 4 },
  ])('$input', ({ input, length, family }) => {
    expect(parseCidr(input)).toMatchObject({ length, family });
  });

  it.each([
    { input: '10.1.2.3/8', error: 'has bits set past its /8 prefix (did you mean 10.0.0.0/8?)' },
    { input: '10.0.0.0/33', error: 'out of range' },
    { input: '2001:db8::/129', error: 'out of range' },
    { input: '10.0.0.0/x', error: 'is not a prefix length' },
    { input: 'example.com', error: 'is not an IPv4 or IPv6 address' },
  ])('refuses $input', ({ input, error }) => {
    const out = parseCidr(input);
    expect(typeof out).toBe('string');
    expect(out).toContain(error);
  });
});

describe('IpListIndex', () => {
  const index = IpListIndex.compile([
    { name: 'outer', text: '10.0.0.0/8\n' },
    { name: 'inner', text: '# a sub-range of outer\n10.1.0.0/16   # trailing comment\n\n   \n' },
    { name: 'host', text: '10.1.2.3\n' },
    { name: 'v6', text: '2001:db8::/32\n2001:db8:1::/48  # overlaps the line above\n' },
    { name: 'everything', text: '0.0.0.0/0\n::/0\n' },
  ]);

  it.each([
    { ip: '10.1.2.3', lists: ['everything', 'host', 'inner', 'outer'] },
    { ip: '10.1.9.9', lists: ['everything', 'inner', 'outer'] },
    { ip: '10.200.0.1', lists: ['everything', 'outer'] },
    { ip: '11.0.0.1', lists: ['everything'] },
    { ip: '2001:db8:1::5', lists: ['everything', 'v6'] },
    { ip: '2001:db9::1', lists: ['everything'] },
    { ip: '::ffff:10.1.2.3', lists: ['everything', 'host', 'inner', 'outer'] },
    { ip: 'not-an-ip', lists: [] },
  ])('$ip → $lists', ({ ip, lists }) => {
    expect(index.match(ip)).toEqual(lists);
  });

  it('counts entries per list', () => {
    expect(index.summary()).toEqual([
      { name: 'everything', entries: 2 },
      { name: 'host', entries: 1 },
      { name: 'inner', entries: 1 },
      { name: 'outer', entries: 1 },
      { name: 'v6', entries: 2 },
    ]);
  });

  it('names the list and line of a bad entry', () => {
    expect(() => IpListIndex.compile([{ name: 'feed', text: '10.0.0.0/8\n10.0.0.300\n' }])).toThrow(
      new IpListError('lists/feed.txt line 2: "10.0.0.300" is not an IPv4 or IPv6 address'),
    );
  });

  it('refuses list names a policy could not spell plainly', () => {
    expect(() => IpListIndex.compile([{ name: 'bad name', text: '' }])).toThrow(IpListError);
  });

  it('maps lists/NAME.txt paths to names and refuses subdirectories', () => {
    expect(listNameOf('lists/tor-exit.txt')).toBe('tor-exit');
    expect(listNameOf('lists/README.md')).toBeUndefined();
    expect(listNameOf('mesh.cedar')).toBeUndefined();
    expect(() => listNameOf('lists/feeds/tor.txt')).toThrow(/no subdirectories/);
  });
});

describe('forwardedClientIp', () => {
  const ip = (xff: string | undefined, hops: number) => {
    const p = forwardedClientIp(xff, hops);
    return p ? hex(p.words) : undefined;
  };
  it.each([
    { name: 'no trusted hops ignores the header', xff: '192.0.2.1', hops: 0, expected: undefined },
    { name: 'one hop takes the rightmost entry', xff: '198.51.100.1, 192.0.2.1', hops: 1, expected: 'c0000201' },
    {
      name: 'two hops take the second from the right',
      xff: '198.51.100.1, 192.0.2.1, 10.0.0.1',
      hops: 2,
      expected: 'c0000201',
    },
    { name: 'fewer entries than hops is not trusted', xff: '192.0.2.1', hops: 2, expected: undefined },
    { name: 'a port is stripped', xff: '192.0.2.1:4711', hops: 1, expected: 'c0000201' },
    {
      name: 'a bracketed IPv6 with port',
      xff: '[2001:db8::1]:443',
      hops: 1,
      expected: '20010db8 00000000 00000000 00000001',
    },
    { name: 'a bare IPv6', xff: '2001:db8::1', hops: 1, expected: '20010db8 00000000 00000000 00000001' },
    { name: 'garbage is no address', xff: 'unknown', hops: 1, expected: undefined },
    { name: 'missing header', xff: undefined, hops: 1, expected: undefined },
  ])('$name', ({ xff, hops, expected }) => {
    expect(ip(xff, hops)).toBe(expected);
  });
});

describe('cedarIp (source and destination addresses as Cedar takes them)', () => {
  it.each([
    { input: '192.0.2.1', expected: '192.0.2.1' },
    { input: '2001:db8::1', expected: '2001:db8::1' },
    { input: '::ffff:192.0.2.1', expected: '192.0.2.1' },
    { input: '::FFFF:192.0.2.1', expected: '192.0.2.1' },
    { input: '64:ff9b::192.0.2.1', expected: undefined },
    { input: 'not-an-ip', expected: undefined },
    { input: ':', expected: undefined },
    { input: ':::', expected: undefined },
    { input: 'fe80::1%eth0', expected: undefined },
    { input: '', expected: undefined },
  ])('$input → $expected', ({ input, expected }) => {
    expect(cedarIp(input)).toBe(expected);
  });
});
