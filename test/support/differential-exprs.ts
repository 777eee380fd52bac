/**
 * Conditions for the differential suite's policies (test/support/differential.ts): every construct of
 * Cedar 4.x the JS evaluator must get right, typed loosely (so most conditions mean something and some
 * error: missing attributes, wrong types, overflow), always valid Cedar text (a policy that fails to parse
 * wastes a whole scenario: test/unit/differential-generators.test.ts measures the share).
 *
 * The world it reads (entities, context fields, tag keys) is the one differential.ts builds.
 */
import fc from 'fast-check';
import { cedarString } from './extension-expr.js';
import { datetimeText, decimalText, durationText, extensionCondition, ipText } from './extension-literals.js';

export const I64_MAX = 2n ** 63n - 1n;
export const I64_MIN = -(2n ** 63n);

/** Strings for literals and values: empty, `*` (pattern-looking), unicode (combining, CJK, astral), quotes, backslash, control. */
export const STRINGS = [
  '',
  'a',
  'ab',
  'abc',
  'b*',
  'x',
  '*',
  'a*b',
  'é',
  'e\u0301',
  '日本',
  '🙂',
  'a🙂b',
  'a\\b',
  'a"b',
  'tab\there',
  'nul\0',
  'A',
];

const longLiteral = fc
  .oneof(
    { weight: 4, arbitrary: fc.integer({ min: -3, max: 5 }).map(BigInt) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        I64_MAX,
        I64_MIN,
        I64_MAX - 1n,
        I64_MIN + 1n,
        2n ** 62n,
        -(2n ** 62n),
        3_037_000_500n,
        4_294_967_296n,
      ),
    },
    { weight: 1, arbitrary: fc.bigInt({ min: I64_MIN, max: I64_MAX }) },
  )
  // Cedar reads `-9223372036854775808` as one literal; other negatives may be written with a unary minus.
  .map((n) => (n < 0n ? `(${n})` : `${n}`));

const stringLiteral = fc.constantFrom(...STRINGS).map(cedarString);

/** A `like` pattern: literal pieces, `*` wildcards, escaped stars `\*`, escaped backslashes, unicode escapes. */
const pattern = fc
  .array(
    fc.constantFrom(
      '*',
      '*',
      '\\*',
      'a',
      'b',
      'é',
      '🙂',
      '日',
      '\\u{e9}',
      '\\u{1F642}',
      '\\\\',
      '\\t',
      '\\0',
      '\\"',
      'e\u0301',
    ),
    { maxLength: 4 },
  )
  .map((pieces) => `"${pieces.join('')}"`);

const ENTITY_LITERALS = [
  'User::"u0"',
  'User::"u1"',
  'User::"u9"',
  'Group::"g1"',
  'Group::"g3"',
  'Doc::"d0"',
  'Folder::"f1"',
  'Flags::"global"',
  'Shop::Item::"i0"',
  'Action::"view"',
  'Action::"any"',
];
const entityLiteral = fc.constantFrom(...ENTITY_LITERALS);
const entityExpr = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom('principal', 'resource', 'action', 'resource.owner', 'context.e', 'principal.owner'),
  },
  { weight: 2, arbitrary: entityLiteral },
);

const longExpr: fc.Arbitrary<string> = fc.letrec<{ l: string }>((tie) => ({
  l: fc.oneof(
    { maxDepth: 2, depthSize: 'xsmall' },
    longLiteral,
    fc.constantFrom(
      'principal.level',
      'resource.level',
      'context.a',
      'context.big',
      'action.level',
      'resource.getTag("k1")',
      'context.rec.x',
      'context.dur.toSeconds()',
      'context.dur.toDays()',
      'resource.getTag(context.s)',
    ),
    fc.tuple(tie('l'), fc.constantFrom('+', '-', '*'), tie('l')).map(([a, op, b]) => `(${a} ${op} ${b})`),
    tie('l').map((a) => `-${a}`),
    fc
      .tuple(fc.boolean(), tie('l'), tie('l'))
      .map(([c, a, b]) => `(if ${c ? 'context.flag' : 'principal has level'} then ${a} else ${b})`),
    durationText().map((d) => `duration(${cedarString(d)}).toMinutes()`),
  ),
})).l;

const stringExpr = fc.oneof(
  { weight: 2, arbitrary: stringLiteral },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'principal.name',
      'context.s',
      'context.u',
      'resource.name',
      'context["k y"]',
      'context.rec.s',
    ),
  },
);

const extLiteral = fc.oneof(
  ipText().map((s) => `ip(${cedarString(s)})`),
  decimalText().map((s) => `decimal(${cedarString(s)})`),
  datetimeText().map((s) => `datetime(${cedarString(s)})`),
  durationText().map((s) => `duration(${cedarString(s)})`),
);

/** Any value, for `==`, `contains` and set literals (mixed types compare unequal, never error). */
const anyExpr = fc.oneof(
  longExpr,
  stringExpr,
  entityExpr,
  extLiteral,
  fc.constantFrom('true', 'false', 'context.ip', 'context.when', 'context.d', 'context.dur', 'context.rec', '{}', '[]'),
);

const setExpr = fc.oneof(
  fc.array(anyExpr, { maxLength: 3 }).map((xs) => `[${xs.join(', ')}]`),
  fc.constantFrom(
    'context.tags',
    'context.ips',
    'context.nums',
    'principal.roles',
    'resource.tags',
    '[principal, resource]',
    '[[1], [2, 3]]',
    '[]',
    'context.empty',
    'context.a',
  ),
);

const recordExpr = fc.oneof(
  fc
    .subarray(['a', '"b c"', 'x', '"é"', '"🙂"'], { maxLength: 3 })
    .chain((keys) =>
      fc.tuple(...keys.map(() => anyExpr)).map((vals) => `{${keys.map((k, i) => `${k}: ${vals[i]}`).join(', ')}}`),
    ),
  fc.constantFrom('context.rec', 'context.n', 'resource.rec', '{}', 'context'),
);

const cmpOp = fc.constantFrom('<', '<=', '>', '>=', '==', '!=');
const hasKey = fc.constantFrom(
  'level',
  'name',
  'owner',
  'rec',
  'ip',
  '"k y"',
  '"é"',
  'rec.x',
  'rec.x.y',
  'a',
  'big',
  'n.when',
  'tags',
);

/** A condition of one construct (the boolean connectives are added around these by the caller). */
export const atom: fc.Arbitrary<string> = fc.oneof(
  // Arithmetic and comparisons on Long, with overflow.
  { weight: 6, arbitrary: fc.tuple(longExpr, cmpOp, longExpr).map(([a, op, b]) => `${a} ${op} ${b}`) },
  // Strings: equality, like with wildcards, escapes and unicode.
  {
    weight: 2,
    arbitrary: fc.tuple(stringExpr, fc.constantFrom('==', '!='), stringExpr).map(([a, op, b]) => `${a} ${op} ${b}`),
  },
  { weight: 4, arbitrary: fc.tuple(stringExpr, pattern).map(([s, p]) => `${s} like ${p}`) },
  // has (identifier, string key, attribute chain), on entities, records and the context.
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.constantFrom(
          'principal',
          'resource',
          'context',
          'context.rec',
          'context.n',
          'context.e',
          'User::"u1"',
          'Flags::"global"',
          '{a: 1}',
        ),
        hasKey,
      )
      .map(([e, k]) => `${e} has ${k}`),
  },
  // Entities: ==, in (entity and set of entities), is, is … in.
  {
    weight: 2,
    arbitrary: fc
      .tuple(entityExpr, fc.constantFrom('==', '!=', 'in'), entityExpr)
      .map(([a, op, b]) => `${a} ${op} ${b}`),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(entityExpr, fc.array(entityLiteral, { maxLength: 3 }))
      .map(([a, bs]) => `${a} in [${bs.join(', ')}]`),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        entityExpr,
        fc.constantFrom('User', 'Doc', 'Group', 'Shop::Item', 'Public'),
        fc.option(entityLiteral, { nil: undefined }),
      )
      .map(([e, t, inE]) => `${e} is ${t}${inE ? ` in ${inE}` : ''}`),
  },
  // Sets and their methods.
  { weight: 2, arbitrary: fc.tuple(setExpr, anyExpr).map(([s, v]) => `${s}.contains(${v})`) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(setExpr, fc.constantFrom('containsAll', 'containsAny'), setExpr)
      .map(([a, m, b]) => `${a}.${m}(${b})`),
  },
  { weight: 1, arbitrary: setExpr.map((s) => `${s}.isEmpty()`) },
  { weight: 1, arbitrary: fc.tuple(setExpr, setExpr).map(([a, b]) => `${a} == ${b}`) },
  // Records: literals, access (dot and brackets), equality.
  { weight: 2, arbitrary: fc.tuple(recordExpr, recordExpr).map(([a, b]) => `${a} == ${b}`) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(recordExpr, fc.constantFrom('.a', '["b c"]', '.x', '["é"]', '.s'))
      .map(([r, k]) => `${r}${k} == ${r}${k}`),
  },
  // Entity attributes and chains.
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'resource.owner.level > 1',
      'principal.owner.owner.name == "a"',
      'resource.owner == principal',
      'Flags::"global".lockdown',
      'context.e.level >= 0',
      '{x: principal}.x.level > 1',
      'User::"u1".roles.contains("admin")',
      'resource.rec.x == 1',
      'context.n.ip.isIpv6()',
    ),
  },
  // Tags: hasTag/getTag with literal and computed keys.
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.constantFrom('principal', 'resource', 'context.e', 'User::"u0"', 'Doc::"d1"'),
        fc.constantFrom('"k0"', '"k1"', '"k2"', 'context.s', '"é"'),
        fc.boolean(),
      )
      .map(([e, k, get]) => (get ? `${e}.getTag(${k}) == ${e}.getTag(${k})` : `${e}.hasTag(${k})`)),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'principal.getTag("k0")',
      'resource.getTag("k1") > 0',
      'resource.getTag("k2").level > 0',
      'context.e.hasTag("k0") && context.e.getTag("k0")',
    ),
  },
  // Extension values: every constructor and function, comparisons, literals near the edges, values from context and entities.
  { weight: 6, arbitrary: extensionCondition().map((e) => e.text) },
  {
    weight: 4,
    arbitrary: fc.oneof(
      ipText().map((s) => `context.ip.isInRange(ip(${cedarString(s)}))`),
      ipText().map((s) => `ip(${cedarString(s)}).isInRange(context.ip)`),
      fc.constantFrom(
        'context.ip.isIpv4()',
        'context.ip.isIpv6()',
        'context.ip.isLoopback()',
        'context.ip.isMulticast()',
        'resource.ip.isLoopback()',
        'context.ips.contains(context.ip)',
        'context.n.ip == context.ip',
      ),
      fc
        .tuple(fc.constantFrom('lessThan', 'lessThanOrEqual', 'greaterThan', 'greaterThanOrEqual'), decimalText())
        .map(([m, s]) => `context.d.${m}(decimal(${cedarString(s)}))`),
      fc.constantFrom(
        'resource.d.lessThan(context.d)',
        'context.d == resource.d',
        '[decimal("1.0"), decimal("1.5")].contains(context.d)',
      ),
      fc.tuple(cmpOp, datetimeText()).map(([op, s]) => `context.when ${op} datetime(${cedarString(s)})`),
      fc
        .tuple(cmpOp, durationText(), datetimeText())
        .map(([op, d, s]) => `context.when.offset(duration(${cedarString(d)})) ${op} datetime(${cedarString(s)})`),
      fc
        .tuple(cmpOp, datetimeText(), durationText())
        .map(
          ([op, s, d]) => `context.when.durationSince(datetime(${cedarString(s)})) ${op} duration(${cedarString(d)})`,
        ),
      fc.tuple(cmpOp, datetimeText()).map(([op, s]) => `context.time ${op} datetime(${cedarString(s)})`),
      fc.constantFrom(
        'context.time.toTime() < duration("12h")',
        'context.load * 9223372036854775807 > 0',
        'context.time.offset(context.dur) > context.when',
      ),
      fc.constantFrom(
        'context.when.toDate() == context.n.when.toDate()',
        'context.when.toTime() < duration("12h")',
        'context.n.when > context.when',
        'context.when.toDate().offset(context.dur) > context.when',
        'resource.when < context.when',
      ),
      fc.tuple(cmpOp, durationText()).map(([op, d]) => `context.dur ${op} duration(${cedarString(d)})`),
      fc
        .tuple(fc.constantFrom('toMilliseconds', 'toSeconds', 'toMinutes', 'toHours', 'toDays'), cmpOp, longLiteral)
        .map(([m, op, n]) => `context.dur.${m}() ${op} ${n}`),
    ),
  },
  // if-then-else over values of any type, and equality between values of different types.
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom('context.flag', 'principal has level', 'context.a > 0'), anyExpr, anyExpr, anyExpr)
      .map(([c, a, b, d]) => `(if ${c} then ${a} else ${b}) == ${d}`),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(anyExpr, fc.constantFrom('==', '!='), anyExpr).map(([a, op, b]) => `${a} ${op} ${b}`),
  },
  // The first generator's hand-written atoms stay (they found the issue-10 bugs).
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'principal.level * 9223372036854775807 > 0',
      'resource has owner && resource.owner has name',
      'principal in resource.owner',
      'context.e in Group::"g1"',
      'context.e.hasTag("k0")',
      '(if context.flag then principal else resource) has level',
      '(if context.flag then principal else resource).level > 1',
      '[principal, resource].contains(User::"u0")',
      'Group::"g0" in Group::"g3"',
      'action in Action::"any"',
      'context == {}',
      // Volatile fields (reads.ts VOLATILE_CONTEXT_FIELDS): a slice with these and stable policies is decided in two parts.
      'context.load > 1',
      'context.time < datetime("2026-01-01")',
      'true',
      'false',
    ),
  },
);
