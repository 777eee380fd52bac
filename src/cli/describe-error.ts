/**
 * What the CLI prints for an error: a mistake in the user's input is told in
 * their terms (the file and line, the setting, the path), never as a stack.
 */
import { PolicySetError } from '../cedar/compile.js';
import { BundleBuildError } from '../build/bundle-build.js';
import { BundlePublishError } from '../operator/bundle-publish.js';
import { BundleManifestError } from '../bundle/format/manifest.js';
import { SignatureKeyError } from '../bundle/format/signature.js';
import { BundlePointerError, BundleStoreError } from '../bundle/store/bundle-store.js';
import { LastGoodError } from '../bundle/sources/last-good.js';
import { BundleArchiveError } from '../bundle/format/bundle-archive.js';
import { ModeError } from '../operator/mode.js';
import { LockdownError } from '../operator/lockdown.js';
import { AnnotationError } from '../cedar/annotations.js';
import { IpListError } from '../context/ip-lists.js';
import { ConfigError } from '../config/load-config.js';
import { ListenError } from '../server/listen-error.js';
import { formatNote, type SourceNote } from '../text/source-position.js';

/** Errors that describe a mistake in what the user gave us, as opposed to a bug of ours. */
const USER_ERRORS: Array<abstract new (...args: never[]) => Error> = [
  ConfigError,
  PolicySetError,
  BundleBuildError,
  BundlePublishError,
  BundleManifestError,
  SignatureKeyError,
  BundleStoreError,
  BundlePointerError,
  LastGoodError,
  BundleArchiveError,
  ModeError,
  LockdownError,
  AnnotationError,
  IpListError,
  ListenError,
];

/** Node's words for the system errors a user causes (a missing file, a taken port). */
const SYSTEM_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory, expected a file',
  EEXIST: 'already exists; it is never overwritten',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available on this machine',
  ECONNREFUSED: 'connection refused',
};

export function isUserError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (USER_ERRORS.some((type) => err instanceof type)) return true;
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === 'string' && code in SYSTEM_ERRORS;
}

function notesOf(err: unknown): SourceNote[] {
  if (err instanceof PolicySetError || err instanceof BundleBuildError) return err.notes;
  return [];
}

/**
 * One line saying what went wrong; for mistakes with a place in a file, that
 * line is followed by each place (`file:line:col: message`, the line, a caret).
 */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const sys = err as NodeJS.ErrnoException;
  if (typeof sys.code === 'string' && sys.code in SYSTEM_ERRORS) {
    const where = sys.path ?? (sys as { address?: string; port?: number }).address;
    const port = (sys as { port?: number }).port;
    return where
      ? `${where}${port !== undefined ? `:${port}` : ''}: ${SYSTEM_ERRORS[sys.code]}`
      : `${SYSTEM_ERRORS[sys.code]} (${sys.message})`;
  }
  const notes = notesOf(err);
  if (notes.length === 0) return err.message;
  const summary = err instanceof PolicySetError ? err.summary : (err as BundleBuildError).headline;
  return `${summary}:\n${notes.map(formatNote).join('\n')}`;
}
