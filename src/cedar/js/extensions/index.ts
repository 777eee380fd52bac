/**
 * Cedar 4.x's extension types for the JS evaluator: `ipaddr`, `decimal`, `datetime`, `duration`.
 *
 * The contract with the evaluator (docs: /work/notes/session3.md): arguments are evaluated Cedar values
 * (string, boolean, bigint for Long, ExtensionValue, or anything else the evaluator holds for records, sets
 * and entities); the receiver of a method is args[0]; a Long comes back as a bigint; every evaluation error
 * is an ExtensionCallError. Each rule is checked against @cedar-policy/cedar-wasm in
 * test/unit/cedar-extensions.test.ts.
 */
import { DATETIME_FUNCTIONS, DateTime } from './datetime.js';
import { DECIMAL_FUNCTIONS } from './decimal.js';
import { DURATION_FUNCTIONS, Duration } from './duration.js';
import { ExtensionCallError, type ExtensionValue, cedarTypeName, isExtensionValue } from './extension-value.js';
import { IPADDR_FUNCTIONS } from './ipaddr.js';

export { ExtensionCallError, isExtensionValue } from './extension-value.js';
export type { ExtensionTypeName, ExtensionValue } from './extension-value.js';
export { IpAddr } from './ipaddr.js';
export { Decimal } from './decimal.js';
export { DateTime } from './datetime.js';
export { Duration } from './duration.js';

type ExtensionFunction = (args: readonly unknown[]) => unknown;

function withArity(name: string, arity: number, fn: ExtensionFunction): ExtensionFunction {
  return (args) => {
    if (args.length !== arity) {
      throw new ExtensionCallError(`wrong number of arguments to \`${name}\`: expected ${arity}, got ${args.length}`);
    }
    return fn(args);
  };
}

/** Cedar's extension functions by EST name; constructors and methods alike (a method's receiver is args[0]). */
export const EXTENSION_FUNCTIONS: ReadonlyMap<string, ExtensionFunction> = new Map(
  [...IPADDR_FUNCTIONS, ...DECIMAL_FUNCTIONS, ...DATETIME_FUNCTIONS, ...DURATION_FUNCTIONS].map(
    ([name, arity, fn]) => [name, withArity(name, arity, fn)] as const,
  ),
);

/**
 * `<`, `<=`, `>`, `>=` between extension values. Cedar 4.x orders only two datetimes or two durations
 * (verified: ipaddr, decimal and mixed pairs are type errors; decimals order through lessThan and friends).
 */
export function compareExtensions(op: '<' | '<=' | '>' | '>=', a: ExtensionValue, b: ExtensionValue): boolean {
  let x: bigint;
  let y: bigint;
  if (a instanceof DateTime) {
    if (!(b instanceof DateTime))
      throw new ExtensionCallError(`type error: expected datetime, got ${cedarTypeName(b)}`);
    [x, y] = [a.ms, b.ms];
  } else if (a instanceof Duration) {
    if (!(b instanceof Duration))
      throw new ExtensionCallError(`type error: expected duration, got ${cedarTypeName(b)}`);
    [x, y] = [a.ms, b.ms];
  } else {
    throw new ExtensionCallError(`type error: expected one of [long, datetime, duration], got ${a.extType}`);
  }
  switch (op) {
    case '<':
      return x < y;
    case '<=':
      return x <= y;
    case '>':
      return x > y;
    case '>=':
      return x >= y;
  }
}

/** A Cedar value from JSON inside an `__extn` call: nested `__extn` objects are evaluated, strings stay strings. */
function argFromJson(v: unknown): unknown {
  if (typeof v === 'number') return BigInt(v);
  if (typeof v === 'object' && v !== null && '__extn' in v) {
    const extn = (v as { __extn: unknown }).__extn;
    return extnCallFromJson(extn);
  }
  return v;
}

/**
 * The value of an `__extn` object's body (`{"fn": "ip", "arg": "10.0.0.1"}`, or `{"fn": "offset", "args": [...]}`:
 * Cedar's JSON also accepts several arguments and non-constructor functions, so the result may be a boolean or a Long).
 */
export function extnCallFromJson(extn: unknown): unknown {
  if (typeof extn !== 'object' || extn === null || typeof (extn as { fn?: unknown }).fn !== 'string') {
    throw new ExtensionCallError('`__extn` needs a `fn` string');
  }
  const { fn, arg, args } = extn as { fn: string; arg?: unknown; args?: unknown };
  const f = EXTENSION_FUNCTIONS.get(fn);
  if (!f) throw new ExtensionCallError(`extension function \`${fn}\` does not exist`);
  if (Array.isArray(args)) return f(args.map(argFromJson));
  if (arg === undefined) throw new ExtensionCallError(`\`__extn\` call of \`${fn}\` has no \`arg\``);
  return f([argFromJson(arg)]);
}

/** An extension value from the JSON form `{"__extn": {"fn": "ip", "arg": "10.0.0.1"}}` (entities, context). */
export function extensionFromJson(fn: string, arg: unknown): ExtensionValue {
  const v = extnCallFromJson({ fn, arg });
  if (!isExtensionValue(v))
    throw new ExtensionCallError(`\`__extn\` call of \`${fn}\` does not make an extension value`);
  return v;
}
