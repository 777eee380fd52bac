/**
 * fast-check generators of extension literals near and across each format's edges (ipaddr, decimal,
 * datetime, duration), and of conditions over them: shared by the extension tests against real Cedar
 * and by the differential suite's policy generator.
 */
import fc from 'fast-check';
import { extensionFromJson } from '../../src/cedar/js/extensions/index.js';
import { type Expr, call, cmp, datetime, decimal, duration, eq, ip, long, str } from './extension-expr.js';

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** `usual` n times out of n+1, `rare` otherwise. */
function oneIn<T>(n: number, usual: fc.Arbitrary<T>, rare: fc.Arbitrary<T>): fc.Arbitrary<T> {
  return fc.oneof({ weight: n, arbitrary: usual }, { weight: 1, arbitrary: rare });
}

/**
 * Mostly literals our parser accepts (so conditions reach the value rules), the rest anything the
 * generator makes. Real Cedar judges every one of them, so this only shapes the mix.
 */
function mostlyValid(fn: string, any: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return oneIn(2, onlyValid(fn, any), any);
}

function onlyValid(fn: string, any: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return any.filter((s) => {
    try {
      extensionFromJson(fn, s);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * An `__extn` JSON value with a literal Cedar accepts (context and entity values: a bad one makes
 * Cedar refuse the whole request or entity set, which tests one thing and wastes the rest).
 */
export function validExtnJson(): fc.Arbitrary<{ __extn: { fn: string; arg: string } }> {
  return fc.oneof(
    onlyValid('ip', ipTextAny()).map((arg) => ({ __extn: { fn: 'ip', arg } })),
    onlyValid('decimal', decimalTextAny()).map((arg) => ({ __extn: { fn: 'decimal', arg } })),
    onlyValid('datetime', datetimeTextAny()).map((arg) => ({ __extn: { fn: 'datetime', arg } })),
    onlyValid('duration', durationTextAny()).map((arg) => ({ __extn: { fn: 'duration', arg } })),
  );
}

export const validIpText = () => onlyValid('ip', ipTextAny());
export const validDecimalText = () => onlyValid('decimal', decimalTextAny());
export const validDatetimeText = () => onlyValid('datetime', datetimeTextAny());
export const validDurationText = () => onlyValid('duration', durationTextAny());

/** A valid literal, or a small edit of one (insert, delete, replace a character from the format's alphabet). */
function nearby(valid: fc.Arbitrary<string>, alphabet: string): fc.Arbitrary<string> {
  const edit = fc
    .tuple(valid, fc.nat(), fc.constantFrom(...alphabet), fc.constantFrom('insert', 'delete', 'replace'))
    .map(([s, at, ch, how]) => {
      const i = s.length === 0 ? 0 : at % s.length;
      if (how === 'insert') return s.slice(0, i) + ch + s.slice(i);
      if (how === 'delete') return s.slice(0, i) + s.slice(i + 1);
      return s.slice(0, i) + ch + s.slice(i + 1);
    });
  return fc.oneof({ weight: 8, arbitrary: valid }, { weight: 1, arbitrary: edit });
}

// ---------------------------------------------------------------- ipaddr

const octet = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0, 1, 127, 224, 239, 255));
const v4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
const v4Odd = fc.oneof(
  fc
    .tuple(v4, fc.constantFrom('256', '010', '00', '1000', '-1', '0x1', ' 1'))
    .map(([a, bad]) => a.replace(/[0-9]+$/, bad)),
  fc.tuple(octet, octet, octet).map((o) => o.join('.')),
  v4.map((a) => `${a}.1`),
);

const hexGroup = fc.oneof(
  fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16)),
  fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16).toUpperCase().padStart(4, '0')),
  fc.constantFrom('0', 'ff00', 'ff02', 'ffff', '1', 'fe80', '2001', 'db8'),
);
/** Eight groups, sometimes one run compressed to `::` (also a run of 0 or 8 groups, which Cedar refuses or needs). */
const v6 = fc
  .tuple(fc.array(hexGroup, { minLength: 8, maxLength: 8 }), fc.option(fc.tuple(fc.nat(8), fc.nat(8)), { freq: 2 }))
  .map(([g, cut]) => {
    if (!cut) return g.join(':');
    const [a, b] = [Math.min(cut[0], cut[1]), Math.max(cut[0], cut[1])];
    return `${g.slice(0, a).join(':')}::${g.slice(b).join(':')}`;
  });
const v6Edge = fc.constantFrom(
  '::',
  '::1',
  'ff00::',
  'ff02::1',
  '2001:db8::',
  '::ffff:7f00:1',
  'fe80::1',
  '1:2:3:4:5:6:7::',
  '::2:3:4:5:6:7:8',
);
const v6Odd = fc.oneof(
  v4.map((a) => `::ffff:${a}`),
  v4.map((a) => `::${a}`),
  v6.map((a) => `${a}%eth0`),
  v6.map((a) => `[${a}]`),
  v6.map((a) => `${a}:1`),
  fc.constantFrom(':::', '1::2::3', '00001::', ':1::2', '1::2:'),
);
const prefix = (max: number) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max }).map(String) },
    { weight: 1, arbitrary: fc.constantFrom('0', String(max)) },
    fc.constantFrom('0', String(max), String(max + 1), '01', '00', '', '0032', '+1', '-1', '1a'),
  );

export function ipText(): fc.Arbitrary<string> {
  return mostlyValid('ip', ipTextAny());
}

function ipTextAny(): fc.Arbitrary<string> {
  const withPrefix = (addr: fc.Arbitrary<string>, max: number) =>
    fc.tuple(addr, fc.option(prefix(max), { freq: 2 })).map(([a, p]) => (p === null ? a : `${a}/${p}`));
  return nearby(
    fc.oneof(
      { weight: 4, arbitrary: withPrefix(v4, 32) },
      { weight: 4, arbitrary: withPrefix(fc.oneof(v6, v6Edge), 128) },
      { weight: 1, arbitrary: fc.oneof(v4Odd, v6Odd) },
    ),
    '0123456789abcdefABCDEF.:/% ',
  );
}

// ---------------------------------------------------------------- decimal

export function decimalText(): fc.Arbitrary<string> {
  return mostlyValid('decimal', decimalTextAny());
}

function decimalTextAny(): fc.Arbitrary<string> {
  const whole = fc.oneof(
    fc.integer({ min: 0, max: 99_999 }).map(String),
    fc.bigInt({ min: 0n, max: 922_337_203_685_477n }).map(String),
    fc.constantFrom('0', '00', '01', '922337203685477', '922337203685478', '9223372036854775808'),
  );
  const frac = fc.oneof(
    { weight: 5, arbitrary: fc.stringMatching(/^[0-9]{1,4}$/) },
    { weight: 1, arbitrary: fc.constantFrom('', '00000', '12345', '5807', '5808', '5809') },
  );
  const built = fc
    .tuple(
      oneIn(8, fc.constantFrom('', '-'), fc.constant('+')),
      whole,
      oneIn(12, fc.constant('.'), fc.constantFrom('', ',')),
      frac,
    )
    .map(([s, w, dot, f]) => `${s}${w}${dot}${f}`);
  const edges = fc.constantFrom(
    '922337203685477.5807',
    '922337203685477.5808',
    '-922337203685477.5808',
    '-922337203685477.5809',
    '-0.0',
    '0.0',
    '-0.0001',
    '1.',
    '.5',
  );
  return nearby(fc.oneof({ weight: 4, arbitrary: built }, { weight: 1, arbitrary: edges }), '0123456789.-+e ');
}

// ---------------------------------------------------------------- datetime

export function datetimeText(): fc.Arbitrary<string> {
  return mostlyValid('datetime', datetimeTextAny());
}

function datetimeTextAny(): fc.Arbitrary<string> {
  const year = fc.oneof(
    fc.integer({ min: 0, max: 9999 }),
    fc.constantFrom(0, 1900, 1969, 1970, 2000, 2023, 2024, 2100, 9999),
  );
  const month = oneIn(12, fc.integer({ min: 1, max: 12 }), fc.constantFrom(0, 13));
  const day = oneIn(6, fc.integer({ min: 1, max: 28 }), fc.constantFrom(0, 29, 29, 30, 31, 32));
  const date = fc.tuple(year, month, day).map(([y, m, d]) => `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}`);
  const clock = fc
    .tuple(
      oneIn(12, fc.integer({ min: 0, max: 23 }), fc.constant(24)),
      oneIn(12, fc.integer({ min: 0, max: 59 }), fc.constant(60)),
      oneIn(12, fc.integer({ min: 0, max: 59 }), fc.constant(60)),
    )
    .map(([h, m, s]) => `${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}`);
  const millis = fc.oneof(
    { weight: 3, arbitrary: fc.constant('') },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 999 }).map((n) => `.${pad(n, 3)}`) },
    { weight: 1, arbitrary: fc.constantFrom('.0', '.00', '.1234', '.') },
  );
  const zone = fc.oneof(
    { weight: 3, arbitrary: fc.constant('Z') },
    {
      weight: 4,
      arbitrary: fc
        .tuple(
          fc.constantFrom('+', '-'),
          oneIn(12, fc.integer({ min: 0, max: 23 }), fc.constant(24)),
          oneIn(12, fc.integer({ min: 0, max: 59 }), fc.constant(60)),
        )
        .map(([s, h, m]) => `${s}${pad(h, 2)}${pad(m, 2)}`),
    },
    { weight: 1, arbitrary: fc.constantFrom('+2359', '-2359', '+2359', '-2359', '', 'z', '+01:00', '+01') },
  );
  const full = fc.tuple(date, clock, millis, zone).map(([d, c, ms, z]) => `${d}T${c}${ms}${z}`);
  return nearby(fc.oneof(date, full, full), '0123456789-:T.Z+ ');
}

// ---------------------------------------------------------------- duration

export function durationText(): fc.Arbitrary<string> {
  return mostlyValid('duration', durationTextAny());
}

function durationTextAny(): fc.Arbitrary<string> {
  const amount = fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min: 0, max: 1000 }).map(String) },
    { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 63n }).map(String) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '9223372036854775807',
        '9223372036854775808',
        '106751991167',
        '106751991168',
        '00',
        '01',
      ),
    },
  );
  const units = ['d', 'h', 'm', 's', 'ms'];
  const inOrder = fc
    .tuple(
      oneIn(10, fc.constantFrom('', '-'), fc.constant('+')),
      fc.subarray(units, { minLength: 1 }),
      fc.array(amount, { minLength: 5, maxLength: 5 }),
    )
    .map(([sign, us, ns]) => sign + us.map((u, i) => `${ns[i]}${u}`).join(''));
  const odd = fc.constantFrom(
    '',
    '-',
    '1',
    '1h1d',
    '1ms1s',
    '1d-2h',
    '1D',
    '1.5d',
    '1w',
    '-9223372036854775808ms',
    '9223372036854775s807ms',
    '-9223372036854775s808ms',
  );
  return nearby(fc.oneof({ weight: 6, arbitrary: inOrder }, { weight: 1, arbitrary: odd }), '0123456789dhms-+ ');
}

// ---------------------------------------------------------------- conditions

const anyLong = fc.oneof(
  fc.integer({ min: -100_000, max: 100_000 }).map(BigInt),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.constantFrom(0n, -1n, 1n, 2n ** 63n - 1n, -(2n ** 63n)),
);
const cmpOp = fc.constantFrom('<' as const, '<=' as const, '>' as const, '>=' as const);

/** A datetime expression: a literal, sometimes moved by a duration (offset) or cut to its date. */
function datetimeExpr(): fc.Arbitrary<Expr> {
  const lit = datetimeText().map(datetime);
  return fc.oneof(
    { weight: 4, arbitrary: lit },
    { weight: 1, arbitrary: fc.tuple(lit, durationText()).map(([d, u]) => call('offset', d, duration(u))) },
    { weight: 1, arbitrary: lit.map((d) => call('toDate', d)) },
  );
}

function durationExpr(): fc.Arbitrary<Expr> {
  const lit = durationText().map(duration);
  return fc.oneof(
    { weight: 4, arbitrary: lit },
    { weight: 1, arbitrary: fc.tuple(datetimeExpr(), datetimeExpr()).map(([a, b]) => call('durationSince', a, b)) },
    { weight: 1, arbitrary: datetimeExpr().map((d) => call('toTime', d)) },
  );
}

/** A boolean Cedar condition over extension values (true, false or an error, as it falls). */
export function extensionCondition(): fc.Arbitrary<Expr> {
  const ipE = ipText().map(ip);
  const decE = decimalText().map(decimal);
  const same = <T>(a: fc.Arbitrary<T>) => a.map((x) => [x, x] as const);
  const w = (weight: number, arbitrary: fc.Arbitrary<Expr>) => ({ weight, arbitrary });
  return fc.oneof(
    w(
      4,
      fc.tuple(fc.constantFrom('isIpv4', 'isIpv6', 'isLoopback', 'isMulticast'), ipE).map(([m, a]) => call(m, a)),
    ),
    w(
      4,
      fc.tuple(ipE, ipE).map(([a, b]) => call('isInRange', a, b)),
    ),
    w(
      4,
      fc.tuple(ipE, ipE).map(([a, b]) => eq(a, b)),
    ),
    w(
      4,
      same(ipText()).map(([a, b]) => eq(ip(a), ip(b.toUpperCase()))),
    ),
    w(
      4,
      fc
        .tuple(fc.constantFrom('lessThan', 'lessThanOrEqual', 'greaterThan', 'greaterThanOrEqual'), decE, decE)
        .map(([m, a, b]) => call(m, a, b)),
    ),
    w(
      4,
      fc.tuple(decE, decE).map(([a, b]) => eq(a, b)),
    ),
    w(
      4,
      fc.tuple(datetimeExpr(), datetimeExpr()).map(([a, b]) => eq(a, b)),
    ),
    w(
      4,
      fc.tuple(cmpOp, datetimeExpr(), datetimeExpr()).map(([op, a, b]) => cmp(op, a, b)),
    ),
    w(
      4,
      fc.tuple(cmpOp, durationExpr(), durationExpr()).map(([op, a, b]) => cmp(op, a, b)),
    ),
    w(
      4,
      fc.tuple(durationExpr(), durationExpr()).map(([a, b]) => eq(a, b)),
    ),
    w(
      4,
      fc
        .tuple(
          fc.constantFrom('toMilliseconds', 'toSeconds', 'toMinutes', 'toHours', 'toDays'),
          durationExpr(),
          cmpOp,
          anyLong,
        )
        .map(([m, d, op, n]) => cmp(op, call(m, d), long(n))),
    ),
    // Cedar's type errors: ordering ipaddr/decimal, mixing kinds, a method on the wrong type, a string for a value.
    w(
      1,
      fc.tuple(cmpOp, fc.oneof(ipE, decE), fc.oneof(ipE, decE)).map(([op, a, b]) => cmp(op, a, b)),
    ),
    w(
      1,
      fc.tuple(cmpOp, datetimeExpr(), durationExpr()).map(([op, a, b]) => cmp(op, a, b)),
    ),
    w(
      2,
      fc
        .tuple(fc.oneof(ipE, decE, datetimeExpr(), durationExpr()), fc.oneof(ipE, decE, datetimeExpr(), durationExpr()))
        .map(([a, b]) => eq(a, b)),
    ),
    w(
      1,
      fc
        .tuple(
          fc.constantFrom('isIpv4', 'toDate', 'isInRange'),
          fc.oneof(decE, durationExpr(), datetimeExpr(), ipText().map(str)),
        )
        .map(([m, a]) => (m === 'isInRange' ? call(m, ip('10.0.0.1'), a) : call(m, a))),
    ),
  );
}
