/**
 * A refused policy set, and Cedar's errors as the lines we show. Kept apart
 * from compile.ts so the compile worker (compile-worker.ts) loads only what
 * Cedar's front end needs.
 */
import type { DetailedError } from './cedar-wasm.js';
import { distinctNotes, formatNoteLine, noteAt, type SourceNote } from '../text/source-position.js';

export class PolicySetError extends Error {
  /** Mistakes with a place in a file (each distinct one once, in file order); the CLI shows their lines. */
  readonly notes: SourceNote[];
  constructor(
    readonly summary: string,
    readonly details: string[] = [],
    notes: SourceNote[] = [],
  ) {
    const distinct = distinctNotes(notes);
    const parts = [...distinct.map(formatNoteLine), ...new Set(details)];
    super(parts.length ? `${summary}: ${parts.join('; ')}` : summary);
    this.notes = distinct;
  }
}

/**
 * The compile worker failed (could not start, crashed, ran out of heap or
 * time): Cedar never judged the bundle, so a source tries the same bundle
 * again later (with backoff) instead of refusing it for good. A worker killed
 * by a loaded machine's memory pressure must not leave a server on its old
 * version until the next publish.
 */
export class CompileWorkerFailure extends PolicySetError {}

/** A PolicySetError as plain data (it crosses from the compile worker by structured clone). */
export interface PolicySetRefusal {
  summary: string;
  details: string[];
  notes: SourceNote[];
}

export function refusalOf(err: PolicySetError): PolicySetRefusal {
  return { summary: err.summary, details: [...err.details], notes: err.notes };
}

/** The same error again, message and notes as the thread that refused gave them. */
export function policySetErrorOf(r: PolicySetRefusal): PolicySetError {
  return new PolicySetError(r.summary, r.details, r.notes);
}

export function cedarErrorText(e: DetailedError): string {
  const label = e.sourceLocations?.find((l) => l.label)?.label;
  return [e.message, label, e.help ? `(${e.help})` : undefined].filter(Boolean).join('; ').replace(/; \(/, ' (');
}

export function formatCedarErrors(errors: DetailedError[]): string[] {
  return errors.map(cedarErrorText);
}

/** Cedar errors with source spans as notes in `file` (spans are offsets into `text`, shifted by `offset`); the rest as plain details. */
export function cedarErrorsIn(
  file: string,
  text: string,
  errors: DetailedError[],
  offset = 0,
): { notes: SourceNote[]; details: string[] } {
  const notes: SourceNote[] = [];
  const details: string[] = [];
  for (const e of errors) {
    const at = e.sourceLocations?.[0];
    if (at) notes.push(noteAt(file, text, offset + at.start, offset + at.end, cedarErrorText(e)));
    else details.push(`${file}: ${cedarErrorText(e)}`);
  }
  return { notes, details };
}
