/**
 * Cedar values as the JS evaluator holds them, and Cedar's equality.
 *
 *   Bool   → boolean
 *   Long   → number when it is a safe integer, bigint otherwise (always
 *            normalised that way, so one Long has one representation)
 *   String → string
 *   Entity → EntityUid (compared by `key`, the uid key of entity-store.ts)
 *   Set    → SetValue
 *   Record → RecordValue (JsonRecord reads a JSON object lazily: a field is
 *            converted when a policy reads it, never before)
 *   extension values → ExtensionValue (extensions/index.ts)
 */
import type { CedarValueJson } from '../cedar-wasm.js';
import { uidKey } from '../entity-store.js';
import {
  extensionFromJson,
  extnCallFromJson,
  ExtensionCallError,
  isExtensionValue,
  type ExtensionValue,
} from './extensions/index.js';

export class EntityUid {
  constructor(
    readonly type: string,
    readonly id: string,
    readonly key: string = uidKey(type, id),
  ) {}
}

export class SetValue {
  constructor(readonly items: readonly Value[]) {}
}

export interface RecordValue {
  readonly isRecord: true;
  has(k: string): boolean;
  /** The field's value, or undefined when the record has no such field. */
  get(k: string): Value | undefined;
  keys(): string[];
}

export type Value = boolean | number | bigint | string | EntityUid | SetValue | RecordValue | ExtensionValue;

/** A Cedar evaluation error: the policy is skipped and reported (`kind` names Cedar's error kind). */
export class CedarEvalError extends Error {
  constructor(
    readonly kind:
      | 'type error'
      | 'entity does not exist'
      | 'attribute not found'
      | 'tag not found'
      | 'integer overflow'
      | 'extension error',
    detail: string,
  ) {
    super(`${kind}: ${detail}`);
  }
}

/**
 * Thrown when a request holds data this evaluator does not read exactly (an
 * integer past 2^53, a value form it does not know): the request is decided by
 * wasm instead, with the reason counted.
 */
export class RequestFallback extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

const hasOwn = Object.prototype.hasOwnProperty;

/** A record over a JSON object: fields are converted on read. */
export class JsonRecord implements RecordValue {
  readonly isRecord = true as const;
  constructor(readonly raw: Readonly<Record<string, CedarValueJson>>) {}
  has(k: string): boolean {
    return hasOwn.call(this.raw, k);
  }
  get(k: string): Value | undefined {
    return hasOwn.call(this.raw, k) ? fromJson(this.raw[k]) : undefined;
  }
  keys(): string[] {
    return Object.keys(this.raw);
  }
}

/** A record built by a policy (`{a: 1}`) from evaluated fields. */
export class LitRecord implements RecordValue {
  readonly isRecord = true as const;
  constructor(readonly fields: ReadonlyMap<string, Value>) {}
  has(k: string): boolean {
    return this.fields.has(k);
  }
  get(k: string): Value | undefined {
    return this.fields.get(k);
  }
  keys(): string[] {
    return [...this.fields.keys()];
  }
}

export function isRecord(v: unknown): v is RecordValue {
  return typeof v === 'object' && v !== null && (v as { isRecord?: unknown }).isRecord === true;
}

export function isLong(v: Value): v is number | bigint {
  return typeof v === 'number' || typeof v === 'bigint';
}

export const I64_MIN = -(2n ** 63n);
export const I64_MAX = 2n ** 63n - 1n;

/** A Long from an exact bigint: refused past 64 bits, a number when safe. */
export function longFromBigInt(b: bigint, what: string): number | bigint {
  if (b < I64_MIN || b > I64_MAX) throw new CedarEvalError('integer overflow', what);
  const n = Number(b);
  return Number.isSafeInteger(n) ? n : b;
}

/** A value from Cedar's JSON form (context, entity attributes and tags). */
export function fromJson(raw: CedarValueJson): Value {
  switch (typeof raw) {
    case 'boolean':
    case 'string':
      return raw;
    case 'number':
      if (Number.isSafeInteger(raw)) return raw === 0 ? 0 : raw;
      throw new RequestFallback('number beyond the safe integer range in request data');
    case 'object': {
      if (raw === null) throw new RequestFallback('null in request data');
      if (Array.isArray(raw)) return new SetValue(raw.map(fromJson));
      const rec = raw as Record<string, CedarValueJson>;
      if (hasOwn.call(rec, '__entity')) {
        const e = rec.__entity as { type?: unknown; id?: unknown };
        if (typeof e?.type !== 'string' || typeof e.id !== 'string')
          throw new RequestFallback('malformed __entity in request data');
        return new EntityUid(e.type, e.id);
      }
      if (hasOwn.call(rec, '__extn')) {
        const x = rec.__extn as { fn?: unknown; arg?: unknown; args?: unknown };
        if (typeof x?.fn !== 'string') throw new RequestFallback('extension value form not read by the JS engine');
        try {
          if (x.args !== undefined) {
            // Cedar's JSON also takes calls with several arguments (`offset`), whose result may be any value.
            const v = extnCallFromJson(x);
            return typeof v === 'bigint' ? longFromBigInt(v, x.fn) : (v as Value);
          }
          return extensionFromJson(x.fn, x.arg);
        } catch (err) {
          if (err instanceof ExtensionCallError)
            throw new RequestFallback(`extension value Cedar would refuse: ${err.message}`);
          throw new RequestFallback(`extension ${x.fn} not available: ${(err as Error).message}`);
        }
      }
      if (hasOwn.call(rec, '__expr')) throw new RequestFallback('__expr in request data');
      return new JsonRecord(rec);
    }
    default:
      throw new RequestFallback(`unexpected ${typeof raw} in request data`);
  }
}

/** Cedar's `==`: structural, never an error; values of different types are unequal. */
export function valueEquals(a: Value, b: Value): boolean {
  if (a === b) return true;
  switch (typeof a) {
    case 'number':
    case 'bigint':
      // Normalised Longs: a number and a bigint are never the same Long, but `==` compares them by value anyway.
      // biome-ignore lint/suspicious/noDoubleEquals: loose equality is the one exact number/bigint comparison.
      return (typeof b === 'number' || typeof b === 'bigint') && a == b;
    case 'string':
    case 'boolean':
      return false;
  }
  if (a instanceof EntityUid) return b instanceof EntityUid && a.key === b.key;
  if (a instanceof SetValue) {
    if (!(b instanceof SetValue)) return false;
    return a.items.every((x) => setHas(b, x)) && b.items.every((y) => setHas(a, y));
  }
  if (isRecord(a)) {
    if (!isRecord(b)) return false;
    const ka = a.keys();
    const kb = b.keys();
    if (ka.length !== kb.length) return false;
    for (const k of ka) {
      if (!b.has(k)) return false;
      if (!valueEquals(a.get(k)!, b.get(k)!)) return false;
    }
    return true;
  }
  if (isExtensionValue(a)) return isExtensionValue(b) && a.extType === b.extType && a.equals(b);
  return false;
}

export function setHas(s: SetValue, v: Value): boolean {
  for (const x of s.items) if (valueEquals(x, v)) return true;
  return false;
}

/** Cedar's name of a value's type, for error messages. */
export function typeName(v: Value): string {
  switch (typeof v) {
    case 'boolean':
      return 'bool';
    case 'number':
    case 'bigint':
      return 'long';
    case 'string':
      return 'string';
  }
  if (v instanceof EntityUid) return `entity of type \`${v.type}\``;
  if (v instanceof SetValue) return 'set';
  if (isRecord(v)) return 'record';
  if (isExtensionValue(v)) return v.extType;
  return 'unknown';
}
