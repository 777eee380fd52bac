/** `--engine js|wasm` for the commands that decide (eval, check); `serve` reads it from its config. */
import { ENGINES, setDefaultEngine, type EngineName } from '../cedar/js/engine-choice.js';
import type { OptionSpec } from './command-framework.js';
import { UsageError } from './command-framework.js';

export const ENGINE_OPTION: Record<string, OptionSpec> = {
  engine: { type: 'string', description: 'js|wasm: evaluator of the policies (default js)', valueName: 'ENGINE' },
};

/** Set the process's engine from `--engine` (absent: the default). */
export function applyEngineOption(values: Record<string, unknown>): void {
  const v = values.engine;
  if (v === undefined) return;
  if (typeof v !== 'string' || !(ENGINES as readonly string[]).includes(v))
    throw new UsageError(`--engine must be one of ${ENGINES.join(', ')}, got "${String(v)}"`);
  setDefaultEngine(v as EngineName);
}
