/**
 * The compile worker: a short-lived child process that runs Cedar's front end
 * for one bundle (cedar-front-end.ts), answers, and exits. Cedar's wasm, its
 * compiled code and its linear memory (grown by parsing and validating every
 * policy, never shrunk) exist only here, and go back to the system with the
 * process. Receives one `PolicySetSource` over IPC, sends one
 * `CompileWorkerAnswer`.
 */
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

if (process.send) {
  // The server went away (or gave up on us): nothing is waiting for the answer.
  process.once('disconnect', () => process.exit(0));
  process.once('message', (source: PolicySetSource) => {
    process.send!(run(source), () => process.exit(0));
  });
}
