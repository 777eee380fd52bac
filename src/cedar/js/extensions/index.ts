/**
 * Cedar's extension types for the JS evaluator (ipaddr, decimal, datetime, duration).
 * STUB with the agreed exports (notes/session3.md) so the evaluator compiles; engineer
 * 15b's implementation replaces this file. With the stub, every policy calling an
 * extension function falls back to wasm (no function is known) and a request whose
 * data holds an extension value is decided by wasm (`extensionFromJson` is not ready).
 */
export class ExtensionCallError extends Error {}

export type ExtensionTypeName = 'ipaddr' | 'decimal' | 'datetime' | 'duration';

export interface ExtensionValue {
  readonly extType: ExtensionTypeName;
  equals(other: ExtensionValue): boolean;
  hashKey(): string;
}

export function isExtensionValue(v: unknown): v is ExtensionValue {
  return typeof v === 'object' && v !== null && typeof (v as { extType?: unknown }).extType === 'string' && typeof (v as { equals?: unknown }).equals === 'function';
}

export const EXTENSION_FUNCTIONS: ReadonlyMap<string, (args: readonly unknown[]) => unknown> = new Map();

export function compareExtensions(op: '<' | '<=' | '>' | '>=', a: ExtensionValue, b: ExtensionValue): boolean {
  throw new ExtensionCallError(`${op} is not defined on ${a.extType} and ${b.extType}`);
}

export function extensionFromJson(fn: string, _arg: unknown): ExtensionValue {
  throw new Error(`extension values (${fn}) are not implemented yet`);
}
