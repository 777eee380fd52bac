/**
 * Cedar's front end in a worker thread that exits afterwards (the server's
 * compile; compile-worker.ts is the worker's side). The answer is the same
 * plain data `readWithCedar` gives on this thread, and a refusal is the same
 * `PolicySetError` (message and file/line notes). A worker that crashes, exits
 * without answering, runs out of its heap or past its time limit fails the
 * compile with one message; the caller keeps serving its previous set.
 *
 * Cost, measured with bench/engine-rss.ts: starting the worker and loading
 * Cedar in it is a few hundred ms of the compile's wall time (none of it on the
 * serving thread), and RSS while it runs is the worker's Cedar, given back when
 * it exits.
 */
import { Worker } from 'node:worker_threads';
import type { CedarFrontEnd } from './cedar-front-end.js';
import type { CompileWorkerLimits } from './compile.js';
import type { CompileWorkerAnswer } from './compile-worker.js';
import { policySetErrorOf, PolicySetError } from './policy-set-error.js';
import type { PolicySetSource } from './policy-set-source.js';

/**
 * Default wall-clock limit of one compile worker. The 1,006-policy benchmark
 * bundle takes ~2 s on a quiet core and several times that on a loaded one;
 * a bundle still parsing after this long is refused rather than left running.
 */
export const COMPILE_WORKER_TIME_LIMIT_MS = 120_000;

/** Read a bundle with Cedar in a worker thread; rejects with `PolicySetError`. */
export function readWithCedarInWorker(
  source: PolicySetSource,
  limits: CompileWorkerLimits = {},
): Promise<CedarFrontEnd> {
  const timeLimitMs = limits.timeLimitMs ?? COMPILE_WORKER_TIME_LIMIT_MS;
  return new Promise<CedarFrontEnd>((resolve, reject) => {
    let worker: Worker;
    try {
      worker = startWorker(
        'compile-worker',
        { source: plainSource(source) },
        limits.maxHeapMb ? { maxOldGenerationSizeMb: limits.maxHeapMb } : undefined,
      );
    } catch (err) {
      reject(new PolicySetError(`Cedar compile worker could not start: ${(err as Error).message}`));
      return;
    }
    let settled = false;
    const settle = (fail: PolicySetError | undefined, frontEnd?: CedarFrontEnd): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      if (fail) reject(fail);
      else resolve(frontEnd!);
    };
    const timer = setTimeout(
      () =>
        settle(new PolicySetError(`Cedar compile worker did not finish within ${seconds(timeLimitMs)}; stopped it`)),
      timeLimitMs,
    );
    worker.once('message', (answer: CompileWorkerAnswer) => {
      if (answer.ok) settle(undefined, answer.frontEnd);
      else if ('refusal' in answer) settle(policySetErrorOf(answer.refusal));
      else settle(new PolicySetError(`Cedar compile worker failed: ${answer.failure}`));
    });
    worker.once('error', (err) => settle(new PolicySetError(`Cedar compile worker failed: ${err.message}`)));
    worker.once('exit', (code) =>
      settle(new PolicySetError(`Cedar compile worker exited with code ${code} before answering`)),
    );
  });
}

function seconds(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s` : `${ms} ms`;
}

/** Only what the front end reads (a caller's object may carry more, e.g. bundle.yaml settings). */
function plainSource(s: PolicySetSource): PolicySetSource {
  return {
    version: s.version,
    policies: s.policies.map((f) => ({ name: f.name, text: f.text })),
    ...(s.schema !== undefined ? { schema: s.schema } : {}),
    ...(s.entities !== undefined ? { entities: s.entities } : {}),
    ...(s.entitiesText !== undefined ? { entitiesText: s.entitiesText } : {}),
  };
}

/**
 * A worker running the compiled `<name>.js` next to this file. Under tsx or
 * vitest (this file is .ts) it must load TypeScript itself, and Node 20 does
 * not apply `--import` loaders to a worker's entry: a bootstrap registers tsx.
 */
function startWorker(name: string, workerData: unknown, resourceLimits?: { maxOldGenerationSizeMb: number }): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const entry = new URL(`./${name}.ts`, here).href;
    const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
    return new Worker(boot, { eval: true, workerData, resourceLimits });
  }
  return new Worker(new URL(`./${name}.js`, here), { workerData, resourceLimits });
}
