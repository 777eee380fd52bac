/**
 * Which evaluator decides: `js` (policies compiled to JS closures, src/cedar/js)
 * or `wasm` (Cedar's own build). Chosen once per process from the config
 * (`engine`, `--engine`) and read by the compile; a compile may also be asked
 * for one explicitly (tests run both).
 */
export const ENGINES = ['js', 'wasm'] as const;
export type EngineName = (typeof ENGINES)[number];
export const DEFAULT_ENGINE: EngineName = 'js';

let processEngine: EngineName = DEFAULT_ENGINE;

export function setDefaultEngine(engine: EngineName): void {
  processEngine = engine;
}

export function defaultEngine(): EngineName {
  return processEngine;
}
