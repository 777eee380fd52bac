/**
 * Worker thread: Cedar's front end for one bundle (cedar-front-end.ts), then
 * exit. The wasm module, its code and its linear memory (grown by parsing and
 * validating every policy, never shrunk) go away with this thread, so the
 * serving thread holds none of it. Answers one `CompileWorkerAnswer`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readWithCedar, type CedarFrontEnd } from './cedar-front-end.js';
import { PolicySetError, refusalOf, type PolicySetRefusal } from './policy-set-error.js';
import type { PolicySetSource } from './policy-set-source.js';

export type CompileWorkerAnswer =
  | { ok: true; frontEnd: CedarFrontEnd }
  /** Cedar refused the bundle: the message and notes the one-shot compile gives. */
  | { ok: false; refusal: PolicySetRefusal }
  /** Anything else went wrong (a bug, not the bundle). */
  | { ok: false; failure: string };

function run(source: PolicySetSource): CompileWorkerAnswer {
  try {
    return { ok: true, frontEnd: readWithCedar(source) };
  } catch (err) {
    if (err instanceof PolicySetError) return { ok: false, refusal: refusalOf(err) };
    return { ok: false, failure: (err as Error).message };
  }
}

if (parentPort && workerData?.source) parentPort.postMessage(run(workerData.source as PolicySetSource));
