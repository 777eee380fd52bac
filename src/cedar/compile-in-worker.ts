/**
 * Cedar's front end in a compile worker: a child process that exits
 * afterwards (compile-worker.ts is its side). The answer is the same plain
 * data `readWithCedar` gives on this thread, and a refusal is the same
 * `PolicySetError` (message and file/line notes). A worker that crashes,
 * exits without answering, runs out of heap or past its time limit fails the
 * compile with one message; the caller keeps serving its previous set.
 *
 * A process, not a `worker_threads` Worker: both keep Cedar out of the
 * serving thread, but a thread's memory stays in this process. Measured on the
 * 1,006-policy benchmark bundle (dist/, one front end, full GC, 4 s later):
 * RSS 72 → 121 MB with a Worker (the allocator keeps what the thread's Cedar
 * used), 72 → 69 MB with a child process. Starting either costs about the
 * same (a Node start and Cedar's compile of its wasm, off this thread).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CedarFrontEnd } from './cedar-front-end.js';
import type { CompileWorkerLimits } from './compile.js';
import type { CompileWorkerAnswer } from './compile-worker.js';
import { CompileWorkerFailure, policySetErrorOf, type PolicySetError } from './policy-set-error.js';
import type { PolicySetSource } from './policy-set-source.js';

/**
 * Default wall-clock limit of one compile worker. The 1,006-policy benchmark
 * bundle takes 2–6 s on this 2-core machine (quiet to loaded); a bundle still
 * parsing after this long is refused rather than left running.
 */
export const COMPILE_WORKER_TIME_LIMIT_MS = 120_000;

/** First characters of the worker's stderr kept to explain a crash (V8's "heap out of memory" line comes before its long native stack). */
const STDERR_KEPT_CHARS = 8000;

const WASM_BASELINE_ONLY = '--liftoff-only';

/** Read a bundle with Cedar in a compile worker; rejects with `PolicySetError`. */
export function readWithCedarInWorker(
  source: PolicySetSource,
  limits: CompileWorkerLimits = {},
): Promise<CedarFrontEnd> {
  const timeLimitMs = limits.timeLimitMs ?? COMPILE_WORKER_TIME_LIMIT_MS;
  return startWorker(limits).then(
    (child) => answerOf(child, source, timeLimitMs),
    (err: Error) => Promise.reject(new CompileWorkerFailure(`Cedar compile worker could not start: ${err.message}`)),
  );
}

function answerOf(child: ChildProcess, source: PolicySetSource, timeLimitMs: number): Promise<CedarFrontEnd> {
  return new Promise<CedarFrontEnd>((resolve, reject) => {
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < STDERR_KEPT_CHARS) stderr = (stderr + chunk).slice(0, STDERR_KEPT_CHARS);
    });
    let settled = false;
    const settle = (fail: PolicySetError | undefined, frontEnd?: CedarFrontEnd): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (fail) reject(fail);
      else resolve(frontEnd!);
    };
    const timer = setTimeout(
      () =>
        settle(
          new CompileWorkerFailure(`Cedar compile worker did not finish within ${duration(timeLimitMs)}; stopped it`),
        ),
      timeLimitMs,
    );
    child.once('message', (answer: CompileWorkerAnswer) => {
      if (answer.ok) settle(undefined, answer.frontEnd);
      else if ('refusal' in answer) settle(policySetErrorOf(answer.refusal));
      else settle(new CompileWorkerFailure(`Cedar compile worker failed: ${answer.failure}`));
    });
    child.once('error', (err) => settle(new CompileWorkerFailure(`Cedar compile worker failed: ${err.message}`)));
    // 'close', not 'exit': it comes after the IPC channel has delivered everything the worker sent.
    child.once('close', (code, signal) => {
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const why = crashLine(stderr);
      settle(new CompileWorkerFailure(`Cedar compile worker ${how} before answering${why ? ` (${why})` : ''}`));
    });
    child.send(plainSource(source), (err) => {
      if (err) settle(new CompileWorkerFailure(`Cedar compile worker failed: ${err.message}`));
    });
  });
}

function duration(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s` : `${ms} ms`;
}

/** Why the worker died, when its stderr says: V8's fatal error line, else the first error line, else the last line kept. */
function crashLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  return (
    lines.find((l) => l.startsWith('FATAL ERROR:')) ?? lines.find((l) => /^\w*Error\b/.test(l)) ?? lines.pop() ?? ''
  );
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
 * A fresh Node process (none of this process's flags) running the compiled
 * `compile-worker.js` next to this file, with IPC by structured clone.
 */
async function startWorker(limits: CompileWorkerLimits): Promise<ChildProcess> {
  const here = import.meta.url;
  const entry = here.endsWith('.ts')
    ? await workerFromTypeScript()
    : fileURLToPath(new URL('./compile-worker.js', here));
  const execArgv = [
    // Cedar's wasm in its baseline tier only: a process that parses once and exits never earns back optimising
    // the 4.3 MB module. Measured (1-policy bundle): the first Cedar call 33–65 ms against 170–440 ms, the
    // process 0.65–0.74 s against 1.4–1.8 s, peak RSS 67 against 110 MB; the 1,006-policy front end no slower.
    WASM_BASELINE_ONLY,
    ...(limits.maxHeapMb ? [`--max-old-space-size=${limits.maxHeapMb}`] : []),
  ];
  return fork(entry, [], { execArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
}

let typescriptWorker: Promise<string> | undefined;

/**
 * Under tsx or vitest (this file is .ts, there is no dist/), the worker's
 * TypeScript is bundled once per process with esbuild (tsx's own transpiler)
 * into node_modules/.cache, where its packages resolve. Starting the child
 * with `--import tsx` instead costs 1–2 s per compile (tsx's loader boots in
 * every child), which every test that reloads a bundle would wait for.
 */
function workerFromTypeScript(): Promise<string> {
  typescriptWorker ??= (async () => {
    const { build } = await import('esbuild');
    const entry = fileURLToPath(new URL('./compile-worker.ts', import.meta.url));
    const cache = fileURLToPath(new URL('../../node_modules/.cache/authz/', import.meta.url));
    const out = await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      write: false,
      logLevel: 'silent',
    });
    const code = out.outputFiles[0].contents;
    const file = path.join(cache, `compile-worker-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`);
    if (!existsSync(file)) {
      mkdirSync(cache, { recursive: true });
      // Written under a name of its own, then renamed: another test process may be writing the same file.
      const partial = `${file}.${process.pid}`;
      writeFileSync(partial, code);
      renameSync(partial, file);
    }
    return file;
  })();
  return typescriptWorker;
}
