/**
 * One policy's JSON form (Cedar's EST, from `policyToJson`) compiled into a
 * JS closure: `(env) => boolean`, true when the policy is satisfied, throwing
 * `CedarEvalError` when Cedar's evaluation errors (the policy is then skipped
 * and reported). Closures rather than generated source: no `eval`, and each
 * node is one small monomorphic function V8 inlines well.
 *
 * Semantics follow Cedar 4.x: a policy is `scope && conditions`, left to right;
 * `&&`, `||` and `if` short-circuit and want booleans; every other operator
 * evaluates all its operands, then checks their types (which operand errors
 * first does not change the answer: the policy errors either way).
 *
 * Anything this compiler does not know (slots, unknowns, an extension function
 * the extensions module lacks, an integer literal past 2^53 whose exact value
 * the text does not give back) is refused with `UnsupportedPolicy`, at compile
 * time: the caller then leaves that policy to wasm.
 */
import type { PolicyJson } from '../cedar-wasm.js';
import { compileLike, likeMatches, type PatternElem } from '../like-pattern.js';
import { uidKey, uidOf } from '../entity-store.js';
import { compareExtensions, EXTENSION_FUNCTIONS, ExtensionCallError, isExtensionValue } from './extensions/index.js';
import { MISSING, type RequestEnv } from './request-env.js';
import {
  CedarEvalError,
  EntityUid,
  fromJson,
  isLong,
  isRecord,
  LitRecord,
  longFromBigInt,
  RequestFallback,
  SetValue,
  setHas,
  typeName,
  valueEquals,
  type Value,
} from './values.js';

export class UnsupportedPolicy extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

type Expr = (env: RequestEnv) => Value;
export type PolicyFn = (env: RequestEnv) => boolean;

/** Exact values of integer literals too large for a double, read from the policy text (big-literals.ts). */
export type BigLiterals = (approx: number) => bigint | undefined;

export function compilePolicyJson(json: PolicyJson, bigLiterals?: BigLiterals): PolicyFn {
  const c = new Compiler(bigLiterals);
  const parts: PolicyFn[] = [];
  const j = json as unknown as Record<string, unknown>;
  const principal = c.scope('principal', j.principal);
  const action = c.scope('action', j.action);
  const resource = c.scope('resource', j.resource);
  for (const s of [principal, action, resource]) if (s) parts.push(s);
  const conditions = (j.conditions ?? []) as { kind: string; body: unknown }[];
  for (const cond of conditions) {
    const body = c.expr(cond.body);
    if (cond.kind === 'when') parts.push((env) => asBool(body(env), 'when'));
    else if (cond.kind === 'unless') parts.push((env) => !asBool(body(env), 'unless'));
    else throw new UnsupportedPolicy(`condition kind ${String(cond.kind)}`);
  }
  if (parts.length === 0) return () => true;
  if (parts.length === 1) return parts[0];
  if (parts.length === 2) {
    const [a, b] = parts;
    return (env) => a(env) && b(env);
  }
  return (env) => {
    for (const p of parts) if (!p(env)) return false;
    return true;
  };
}

function asBool(v: Value, where: string): boolean {
  if (typeof v !== 'boolean') throw new CedarEvalError('type error', `${where} expects a boolean, got ${typeName(v)}`);
  return v;
}

function asLong(v: Value, op: string): number | bigint {
  if (typeof v === 'number' || typeof v === 'bigint') return v;
  throw new CedarEvalError('type error', `${op} expects a long, got ${typeName(v)}`);
}

function asEntity(v: Value, op: string): EntityUid {
  if (v instanceof EntityUid) return v;
  throw new CedarEvalError('type error', `${op} expects an entity, got ${typeName(v)}`);
}

function asSet(v: Value, op: string): SetValue {
  if (v instanceof SetValue) return v;
  throw new CedarEvalError('type error', `${op} expects a set, got ${typeName(v)}`);
}

function asString(v: Value, op: string): string {
  if (typeof v === 'string') return v;
  throw new CedarEvalError('type error', `${op} expects a string, got ${typeName(v)}`);
}

type ArithOp = '+' | '-' | '*';

function arith(op: ArithOp, a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = op === '+' ? a + b : op === '-' ? a - b : a * b;
    // Exact whenever the result is a safe integer (both operands are, and every integer below 2^53 is a double).
    if (Number.isSafeInteger(r)) return r === 0 ? 0 : r;
  }
  const x = BigInt(a);
  const y = BigInt(b);
  return longFromBigInt(op === '+' ? x + y : op === '-' ? x - y : x * y, `${String(a)} ${op} ${String(b)}`);
}

type CmpOp = '<' | '<=' | '>' | '>=';

function compare(op: CmpOp, a: Value, b: Value): boolean {
  if (isLong(a) && isLong(b)) {
    switch (op) {
      case '<':
        return a < b;
      case '<=':
        return a <= b;
      case '>':
        return a > b;
      case '>=':
        return a >= b;
    }
  }
  if (isExtensionValue(a) && isExtensionValue(b)) {
    try {
      return compareExtensions(op, a, b);
    } catch (err) {
      if (err instanceof ExtensionCallError) throw new CedarEvalError('type error', err.message);
      throw err;
    }
  }
  throw new CedarEvalError('type error', `${op} is not defined on ${typeName(a)} and ${typeName(b)}`);
}

/** A Cedar value to the extensions' interface (Long as bigint). */
function toExtArg(v: Value): unknown {
  return typeof v === 'number' ? BigInt(v) : v;
}

function fromExtResult(v: unknown, fn: string): Value {
  if (typeof v === 'bigint') return longFromBigInt(v, fn);
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return v;
    throw new CedarEvalError('extension error', `${fn} returned a non-integer`);
  }
  return v as Value;
}

const SCOPE_VARS = new Set(['principal', 'action', 'resource']);

class Compiler {
  constructor(private readonly bigLiterals?: BigLiterals) {}

  private uid(ref: unknown, where: string): EntityUid {
    if (ref === null || typeof ref !== 'object') throw new UnsupportedPolicy(`${where}: not an entity uid`);
    if ('slot' in (ref as object)) throw new UnsupportedPolicy(`${where}: template slot`);
    const { type, id } = uidOf(ref as never);
    if (typeof type !== 'string' || typeof id !== 'string') throw new UnsupportedPolicy(`${where}: not an entity uid`);
    return new EntityUid(type, id, uidKey(type, id));
  }

  /** A scope constraint; undefined for `All` (always true). Scope constraints never error. */
  scope(v: 'principal' | 'action' | 'resource', raw: unknown): PolicyFn | undefined {
    const c = (raw ?? { op: 'All' }) as {
      op: string;
      entity?: unknown;
      entities?: unknown[];
      entity_type?: string;
      in?: { entity?: unknown; slot?: unknown };
    };
    switch (c.op) {
      case 'All':
        return undefined;
      case '==': {
        const key = this.uid(c.entity, `${v} ==`).key;
        return (env) => env[v].key === key;
      }
      case 'in': {
        if (Array.isArray(c.entities)) {
          const keys = c.entities.map((e) => this.uid(e, `${v} in`).key);
          return (env) => {
            const k = env[v].key;
            for (const t of keys) if (env.isIn(k, t)) return true;
            return false;
          };
        }
        const key = this.uid(c.entity, `${v} in`).key;
        return (env) => env.isIn(env[v].key, key);
      }
      case 'is': {
        const t = c.entity_type;
        if (typeof t !== 'string') throw new UnsupportedPolicy(`${v} is: no entity type`);
        if (c.in === undefined) return (env) => env[v].type === t;
        const key = this.uid(c.in.entity, `${v} is … in`).key;
        return (env) => env[v].type === t && env.isIn(env[v].key, key);
      }
      default:
        throw new UnsupportedPolicy(`${v} scope constraint ${String(c.op)}`);
    }
  }

  literal(v: unknown): Value {
    if (typeof v === 'number' && !Number.isSafeInteger(v)) {
      const exact = Number.isInteger(v) ? this.bigLiterals?.(v) : undefined;
      if (exact === undefined)
        throw new UnsupportedPolicy(`integer literal ${v} beyond 2^53 whose exact value is not known`);
      return longFromBigIntAtCompile(exact);
    }
    try {
      return fromJson(v as never);
    } catch (err) {
      if (err instanceof RequestFallback) throw new UnsupportedPolicy(`literal: ${err.message}`);
      throw err;
    }
  }

  expr(node: unknown): Expr {
    if (node === null || typeof node !== 'object' || Array.isArray(node))
      throw new UnsupportedPolicy('malformed expression');
    const keys = Object.keys(node);
    if (keys.length !== 1) throw new UnsupportedPolicy(`expression with keys ${keys.join(',')}`);
    const op = keys[0];
    const arg = (node as Record<string, unknown>)[op] as never;
    switch (op) {
      case 'Value': {
        const v = this.literal(arg);
        return () => v;
      }
      case 'Var': {
        const name = arg as string;
        if (name === 'context') return (env) => env.context;
        if (SCOPE_VARS.has(name)) {
          const n = name as 'principal' | 'action' | 'resource';
          return (env) => env[n];
        }
        throw new UnsupportedPolicy(`variable ${String(name)}`);
      }
      case 'Slot':
        throw new UnsupportedPolicy('template slot');
      case 'Unknown':
        throw new UnsupportedPolicy('unknown (partial evaluation)');
      case '!': {
        const a = this.expr((arg as { arg: unknown }).arg);
        return (env) => !asBool(a(env), '!');
      }
      case 'neg': {
        const a = this.expr((arg as { arg: unknown }).arg);
        return (env) => {
          const x = asLong(a(env), 'negation');
          if (typeof x === 'number') return x === 0 ? 0 : -x;
          return longFromBigInt(-x, `-(${x})`);
        };
      }
      case '==':
      case '!=': {
        const [l, r] = this.binary(arg);
        return op === '==' ? (env) => valueEquals(l(env), r(env)) : (env) => !valueEquals(l(env), r(env));
      }
      case '<':
      case '<=':
      case '>':
      case '>=': {
        const [l, r] = this.binary(arg);
        const cmp = op as CmpOp;
        return (env) => {
          const a = l(env);
          const b = r(env);
          if (typeof a === 'number' && typeof b === 'number') {
            return cmp === '<' ? a < b : cmp === '<=' ? a <= b : cmp === '>' ? a > b : a >= b;
          }
          return compare(cmp, a, b);
        };
      }
      case '+':
      case '-':
      case '*': {
        const [l, r] = this.binary(arg);
        const o = op as ArithOp;
        return (env) => {
          const a = l(env);
          const b = r(env);
          return arith(o, asLong(a, o), asLong(b, o));
        };
      }
      case '&&': {
        const [l, r] = this.binary(arg);
        return (env) => asBool(l(env), '&&') && asBool(r(env), '&&');
      }
      case '||': {
        const [l, r] = this.binary(arg);
        return (env) => asBool(l(env), '||') || asBool(r(env), '||');
      }
      case 'if-then-else': {
        const a = arg as { if: unknown; then: unknown; else: unknown };
        const c = this.expr(a.if);
        const t = this.expr(a.then);
        const e = this.expr(a.else);
        return (env) => (asBool(c(env), 'if') ? t(env) : e(env));
      }
      case 'in': {
        const [l, r] = this.binary(arg);
        return (env) => {
          const a = l(env);
          const b = r(env);
          const e = asEntity(a, 'in');
          if (b instanceof EntityUid) return env.isIn(e.key, b.key);
          if (b instanceof SetValue) {
            const targets = b.items.map((x) => asEntity(x, 'in (set element)'));
            for (const t of targets) if (env.isIn(e.key, t.key)) return true;
            return false;
          }
          throw new CedarEvalError('type error', `in expects an entity or a set of entities, got ${typeName(b)}`);
        };
      }
      case 'contains': {
        const [l, r] = this.binary(arg);
        return (env) => {
          const s = l(env);
          const v = r(env);
          return setHas(asSet(s, 'contains'), v);
        };
      }
      case 'containsAll':
      case 'containsAny': {
        const [l, r] = this.binary(arg);
        const all = op === 'containsAll';
        return (env) => {
          const a = l(env);
          const b = r(env);
          const s = asSet(a, op);
          const t = asSet(b, op);
          return all ? t.items.every((x) => setHas(s, x)) : t.items.some((x) => setHas(s, x));
        };
      }
      case 'isEmpty': {
        const a = this.expr((arg as { arg: unknown }).arg);
        return (env) => asSet(a(env), 'isEmpty').items.length === 0;
      }
      case '.': {
        const a = arg as { left: unknown; attr: string };
        const l = this.expr(a.left);
        const name = a.attr;
        return (env) => getAttr(env, l(env), name);
      }
      case 'has': {
        const a = arg as { left: unknown; attr: string | string[] };
        const l = this.expr(a.left);
        const path = Array.isArray(a.attr) ? a.attr : [a.attr];
        if (path.length === 0) throw new UnsupportedPolicy('has with an empty path');
        // `e has a.b.c` is `e has a && e.a has b && e.a.b has c`.
        return (env) => {
          let v = l(env);
          for (let i = 0; i < path.length; i++) {
            if (!hasAttr(env, v, path[i])) return false;
            if (i + 1 < path.length) v = getAttr(env, v, path[i]);
          }
          return true;
        };
      }
      case 'like': {
        const a = arg as { left: unknown; pattern: PatternElem[] };
        const l = this.expr(a.left);
        if (!Array.isArray(a.pattern)) throw new UnsupportedPolicy('like without a pattern');
        for (const p of a.pattern)
          if (p !== 'Wildcard' && (typeof p !== 'object' || typeof p.Literal !== 'string'))
            throw new UnsupportedPolicy('like pattern element');
        const pattern = compileLike(a.pattern);
        return (env) => likeMatches(pattern, asString(l(env), 'like'));
      }
      case 'is': {
        const a = arg as { left: unknown; entity_type: string; in?: unknown };
        const l = this.expr(a.left);
        const t = a.entity_type;
        if (typeof t !== 'string') throw new UnsupportedPolicy('is without an entity type');
        if (a.in === undefined) return (env) => asEntity(l(env), 'is').type === t;
        const r = this.expr(a.in);
        // `e is T in x` is `e is T && e in x`: the `in` part is not evaluated when the type differs.
        return (env) => {
          const e = asEntity(l(env), 'is');
          if (e.type !== t) return false;
          const b = r(env);
          if (b instanceof EntityUid) return env.isIn(e.key, b.key);
          if (b instanceof SetValue) {
            const targets = b.items.map((x) => asEntity(x, 'in (set element)'));
            for (const x of targets) if (env.isIn(e.key, x.key)) return true;
            return false;
          }
          throw new CedarEvalError('type error', `in expects an entity or a set of entities, got ${typeName(b)}`);
        };
      }
      case 'hasTag':
      case 'getTag': {
        const [l, r] = this.binary(arg);
        const get = op === 'getTag';
        return (env) => {
          const a = l(env);
          const b = r(env);
          const e = asEntity(a, op);
          const k = asString(b, op);
          const raw = env.tag(e.key, k);
          if (!get) return raw !== MISSING;
          if (raw === MISSING) {
            if (!env.exists(e.key))
              throw new CedarEvalError('entity does not exist', `${e.type}::${JSON.stringify(e.id)}`);
            throw new CedarEvalError('tag not found', `\`${e.type}::${JSON.stringify(e.id)}\` has no tag \`${k}\``);
          }
          return fromJson(raw);
        };
      }
      case 'Set': {
        const items = (arg as unknown[]).map((x) => this.expr(x));
        return (env) => new SetValue(items.map((f) => f(env)));
      }
      case 'Record': {
        const fields = Object.entries(arg as Record<string, unknown>).map(([k, x]) => [k, this.expr(x)] as const);
        return (env) => {
          const m = new Map<string, Value>();
          for (const [k, f] of fields) m.set(k, f(env));
          return new LitRecord(m);
        };
      }
      default:
        return this.extensionCall(op, arg);
    }
  }

  private binary(arg: unknown): [Expr, Expr] {
    const a = arg as { left: unknown; right: unknown };
    if (a === null || typeof a !== 'object' || !('left' in a) || !('right' in a))
      throw new UnsupportedPolicy('malformed binary expression');
    return [this.expr(a.left), this.expr(a.right)];
  }

  private extensionCall(name: string, arg: unknown): Expr {
    const fn = EXTENSION_FUNCTIONS.get(name);
    if (!fn || !Array.isArray(arg)) throw new UnsupportedPolicy(`function ${name}`);
    const args = (arg as unknown[]).map((x) => this.expr(x));
    return (env) => {
      const values = args.map((f) => toExtArg(f(env)));
      let out: unknown;
      try {
        out = fn(values);
      } catch (err) {
        if (err instanceof ExtensionCallError) throw new CedarEvalError('extension error', `${name}: ${err.message}`);
        throw err;
      }
      return fromExtResult(out, name);
    };
  }
}

function longFromBigIntAtCompile(b: bigint): Value {
  try {
    return longFromBigInt(b, 'literal');
  } catch {
    throw new UnsupportedPolicy(`integer literal ${b} outside 64 bits`);
  }
}

function hasAttr(env: RequestEnv, v: Value, name: string): boolean {
  if (v instanceof EntityUid) return env.attr(v.key, name) !== MISSING;
  if (isRecord(v)) return v.has(name);
  throw new CedarEvalError('type error', `has expects an entity or a record, got ${typeName(v)}`);
}

function getAttr(env: RequestEnv, v: Value, name: string): Value {
  if (v instanceof EntityUid) {
    const raw = env.attr(v.key, name);
    if (raw === MISSING) {
      if (!env.exists(v.key)) throw new CedarEvalError('entity does not exist', `${v.type}::${JSON.stringify(v.id)}`);
      throw new CedarEvalError(
        'attribute not found',
        `\`${v.type}::${JSON.stringify(v.id)}\` has no attribute \`${name}\``,
      );
    }
    return fromJson(raw);
  }
  if (isRecord(v)) {
    const x = v.get(name);
    if (x === undefined) throw new CedarEvalError('attribute not found', `record has no attribute \`${name}\``);
    return x;
  }
  throw new CedarEvalError('type error', `.${name} expects an entity or a record, got ${typeName(v)}`);
}
