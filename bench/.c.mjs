import { readPolicyDirectory } from '../dist/bundle/policy-directory.js';
import { filesToPolicySetSource } from '../dist/bundle/bundle-files.js';
import { compilePolicySetInChunks } from '../dist/cedar/compile-async.js';
const dir = process.argv[2];
for (let i = 0; i < 3; i++) {
  const t = performance.now();
  const r = await compilePolicySetInChunks(filesToPolicySetSource(await readPolicyDirectory(dir), 'v' + i));
  console.log(
    `${(performance.now() - t).toFixed(0)} ms, ${r.steps} steps, longest ${r.longestStepMs.toFixed(1)} ms in ${r.longestStepPhase}, validated in ${r.validatedIn}`,
  );
}
