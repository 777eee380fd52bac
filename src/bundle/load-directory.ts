/**
 * Read and compile a policy directory in one step (CLI `check`, `validate`).
 */
import { compilePolicySet, type CompiledPolicySet } from '../cedar/compile.js';
import { filesToPolicySetSource } from './bundle-files.js';
import { directoryVersion, readPolicyDirectory } from './policy-directory.js';

export async function compilePolicyDirectory(dir: string): Promise<CompiledPolicySet> {
  const files = await readPolicyDirectory(dir);
  return compilePolicySet(filesToPolicySetSource(files, directoryVersion(files)));
}
