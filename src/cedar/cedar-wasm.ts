/**
 * The single import point of Cedar, loaded on first use. Cedar's wasm build
 * costs the thread that loads it 15 MB at once and ~37 MB after the first
 * call, and its linear memory only grows (measured with bench/engine-rss.ts:
 * policyToJson and validation of the 1,006-policy benchmark bundle left
 * ~100 MB that never came back). The server has Cedar read bundles in a
 * compile worker process (compile-worker.ts) and decides with the JS engine, so its serving
 * thread loads Cedar only when something needs wasm there: a slice the JS
 * engine leaves to wasm, `--engine wasm`, a shadow evaluation on wasm, or a
 * CLI command. `cedar.x(...)` reads like a plain import; the first access
 * loads the `nodejs` build synchronously (it has no async init to forget).
 */
import { createRequire } from 'node:module';
// First: a V8 flag that keeps Node 20 from crashing in optimized calls into Wasm (see v8-flags.ts).
import './v8-flags.js';

type CedarModule = typeof import('@cedar-policy/cedar-wasm/nodejs');

const require = createRequire(import.meta.url);
let loaded: CedarModule | undefined;

function load(): CedarModule {
  loaded ??= require('@cedar-policy/cedar-wasm/nodejs') as CedarModule;
  return loaded;
}

/** Cedar's API; the wasm module is loaded in this thread on the first property read. */
export const cedar: CedarModule = new Proxy({} as CedarModule, {
  get: (_target, name) => Reflect.get(load(), name),
});

/**
 * Load Cedar's wasm now: compiling the 4.3 MB module holds the thread for
 * 0.1–0.3 s, which a server deciding with wasm pays at start rather than in
 * the middle of its first compile, beside live traffic.
 */
export function loadCedarWasm(): void {
  load();
}

/** Whether this thread has loaded Cedar's wasm (each thread has its own). */
export function cedarWasmLoaded(): boolean {
  return loaded !== undefined;
}

export type {
  EntityJson,
  EntityUidJson,
  CedarValueJson,
  PolicyJson,
  DetailedError,
} from '@cedar-policy/cedar-wasm/nodejs';
