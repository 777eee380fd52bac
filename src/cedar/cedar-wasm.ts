/**
 * The single import point of Cedar. The `nodejs` build loads the wasm
 * synchronously at import, so there is no async init to forget.
 */
import './v8-flags.js';
export * as cedar from '@cedar-policy/cedar-wasm/nodejs';
export type {
  EntityJson,
  EntityUidJson,
  CedarValueJson,
  PolicyJson,
  DetailedError,
  Context as CedarContext,
} from '@cedar-policy/cedar-wasm/nodejs';
