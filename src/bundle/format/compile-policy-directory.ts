/**
 * Read and compile a policy directory in one step (CLI `check`, `eval`, `validate`).
 * Mistakes are reported with paths under `dir`, so an editor can jump to them.
 */
import { compilePolicySet, PolicySetError, type CompiledPolicySet } from '../../cedar/compile.js';
import { notesUnder } from '../../text/source-position.js';
import { filesToPolicySetSource } from './bundle-files.js';
import { directoryVersion, readPolicyDirectory } from './policy-directory.js';

export async function compilePolicyDirectory(dir: string): Promise<CompiledPolicySet> {
  const files = await readPolicyDirectory(dir);
  try {
    return compilePolicySet(filesToPolicySetSource(files, directoryVersion(files)));
  } catch (err) {
    if (err instanceof PolicySetError && err.notes.length > 0) throw new PolicySetError(err.summary, err.details, notesUnder(dir, err.notes));
    throw err;
  }
}
