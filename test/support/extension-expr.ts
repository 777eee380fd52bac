/**
 * Small Cedar expressions over extension values, each with its Cedar text and its value through
 * src/cedar/js/extensions: the same expression is decided by real Cedar (`when { <text> }`) and by
 * our functions, and both must say true, false or error.
 */
import { cedar } from '../../src/cedar/cedar-wasm.js';
import {
  EXTENSION_FUNCTIONS,
  compareExtensions,
  isExtensionValue,
  ExtensionCallError,
} from '../../src/cedar/js/extensions/index.js';

export interface Expr {
  /** Cedar text. */
  readonly text: string;
  /** Our value; throws ExtensionCallError where Cedar errors. */
  run(): unknown;
}

export type Outcome = true | false | 'error';

const METHODS = new Set([
  'isIpv4',
  'isIpv6',
  'isLoopback',
  'isMulticast',
  'isInRange',
  'lessThan',
  'lessThanOrEqual',
  'greaterThan',
  'greaterThanOrEqual',
  'offset',
  'durationSince',
  'toDate',
  'toTime',
  'toMilliseconds',
  'toSeconds',
  'toMinutes',
  'toHours',
  'toDays',
]);

/** A Cedar string literal (escaped as Cedar reads it). */
export function cedarString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c < 0x20 || c === 0x7f) out += `\\u{${c.toString(16)}}`;
    else out += ch;
  }
  return `${out}"`;
}

export function str(s: string): Expr {
  return { text: cedarString(s), run: () => s };
}

export function long(n: bigint | number): Expr {
  const v = BigInt(n);
  // Cedar has no negative literal for i64::MIN; write it as an expression Cedar evaluates without overflow.
  const text = v < 0n ? (v === -(2n ** 63n) ? `(-9223372036854775807 - 1)` : `(-${-v})`) : `${v}`;
  return { text, run: () => v };
}

/** A constructor (`ip("…")`) or a method (`a.isInRange(b)`: args[0] is the receiver). */
export function call(fn: string, ...args: Expr[]): Expr {
  const f = EXTENSION_FUNCTIONS.get(fn);
  if (!f) throw new Error(`no extension function ${fn}`);
  const text = METHODS.has(fn)
    ? `${args[0].text}.${fn}(${args
        .slice(1)
        .map((a) => a.text)
        .join(', ')})`
    : `${fn}(${args.map((a) => a.text).join(', ')})`;
  return { text, run: () => f(args.map((a) => a.run())) };
}

export const ip = (s: string) => call('ip', str(s));
export const decimal = (s: string) => call('decimal', str(s));
export const datetime = (s: string) => call('datetime', str(s));
export const duration = (s: string) => call('duration', str(s));

function cedarEquals(a: unknown, b: unknown): boolean {
  if (isExtensionValue(a)) return isExtensionValue(b) && a.equals(b);
  return a === b;
}

export function eq(a: Expr, b: Expr): Expr {
  return { text: `${a.text} == ${b.text}`, run: () => cedarEquals(a.run(), b.run()) };
}

export function cmp(op: '<' | '<=' | '>' | '>=', a: Expr, b: Expr): Expr {
  return {
    text: `${a.text} ${op} ${b.text}`,
    run: () => {
      const x = a.run();
      const y = b.run();
      if (typeof x === 'bigint' && typeof y === 'bigint') {
        return op === '<' ? x < y : op === '<=' ? x <= y : op === '>' ? x > y : x >= y;
      }
      if (isExtensionValue(x) && isExtensionValue(y)) return compareExtensions(op, x, y);
      throw new ExtensionCallError('type error: mixed comparison');
    },
  };
}

/** Our outcome for a `when` condition: a non-boolean value is a type error there. */
export function ourOutcome(e: Expr): Outcome {
  try {
    const v = e.run();
    return typeof v === 'boolean' ? v : 'error';
  } catch (err) {
    if (err instanceof ExtensionCallError) return 'error';
    throw err;
  }
}

function outcomesOneByOne(texts: readonly string[]): Outcome[] {
  return texts.map((t) => cedarOutcomes([t], false)[0]);
}

/**
 * Real Cedar's outcome of each condition, all in one isAuthorized call (one policy per condition).
 * A condition Cedar refuses to parse counts as an error of the test, not of the condition.
 */
export function cedarOutcomes(texts: readonly string[], batch = true): Outcome[] {
  const ids = texts.map((_, i) => `p${i}`);
  const staticPolicies: Record<string, string> = {};
  texts.forEach((t, i) => {
    staticPolicies[ids[i]] = `permit(principal, action, resource) when { ${t} };`;
  });
  const answer = cedar.isAuthorized({
    principal: { type: 'U', id: 'u' },
    action: { type: 'A', id: 'a' },
    resource: { type: 'R', id: 'r' },
    context: {},
    entities: [],
    policies: { staticPolicies },
  });
  if (answer.type === 'failure') {
    if (batch && texts.length > 1) return outcomesOneByOne(texts);
    throw new Error(`Cedar refused ${texts[0]}: ${answer.errors.map((e) => e.message).join('; ')}`);
  }
  const allowed = new Set(answer.response.diagnostics.reason);
  const errored = new Set(answer.response.diagnostics.errors.map((e) => e.policyId));
  return ids.map((id) => (errored.has(id) ? 'error' : allowed.has(id)));
}
