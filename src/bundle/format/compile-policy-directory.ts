/**
 * Read and compile a policy directory in one step (CLI `check`, `eval`, `validate`).
 * Mistakes are reported with paths under `dir`, so an editor can jump to them.
 */
import { PolicySetError } from '../../cedar/compile.js';
import { compileBundle, type ActiveBundle } from '../active-bundle.js';
import { notesUnder } from '../../text/source-position.js';
import { filesToPolicySetSource } from './bundle-files.js';
import { directoryVersion, readPolicyDirectory } from './policy-directory.js';

export async function compilePolicyDirectory(dir: string): Promise<ActiveBundle> {
  const files = await readPolicyDirectory(dir);
  try {
    return compileBundle(filesToPolicySetSource(files, directoryVersion(files)));
  } catch (err) {
    if (err instanceof PolicySetError && err.notes.length > 0)
      throw new PolicySetError(err.summary, err.details, notesUnder(dir, err.notes));
    throw err;
  }
}
