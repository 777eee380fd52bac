/** One policy of a compiled set: its text, JSON (EST) form and annotations. */
import type { PolicyJson } from './cedar-wasm.js';
import type { PolicyAnnotations } from './annotations.js';

export interface CompiledPolicy {
  id: string;
  effect: 'permit' | 'forbid';
  file: string;
  /** Position in the set; "first determining policy" means lowest order. */
  order: number;
  text: string;
  json: PolicyJson;
  annotations: PolicyAnnotations;
}
