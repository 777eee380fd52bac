/**
 * The single import point of Cedar. The `nodejs` build loads the wasm
 * synchronously at import, so there is no async init to forget.
 */
// First: a V8 flag that keeps Node 20 from crashing in optimized calls into Wasm (see v8-flags.ts).
import './v8-flags.js';
export * as cedar from '@cedar-policy/cedar-wasm/nodejs';
export type {
  EntityJson,
  EntityUidJson,
  CedarValueJson,
  PolicyJson,
  DetailedError,
} from '@cedar-policy/cedar-wasm/nodejs';
