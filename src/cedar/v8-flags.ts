/**
 * Turn off TurboFan's inlining of JS→Wasm calls before any Cedar call can be
 * optimized. With it on (the default in Node 20's V8 11.3), a function that
 * calls into Cedar and is deoptimized while the call is running aborts the
 * whole process: "Fatal error ... unreachable code" in
 * Deoptimizer::DoComputeBuiltinContinuation. Reproduced here about one run in
 * two of a hot loop (bench/hot-path.ts); with `--no-turbo-inline-js-wasm-calls`,
 * 20 runs out of 20 passed. The inlining saves nanoseconds per call; an abort
 * takes the authorizer down.
 */
import v8 from 'node:v8';

v8.setFlagsFromString('--no-turbo-inline-js-wasm-calls');
