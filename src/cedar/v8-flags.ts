/**
 * Node 20's V8 (11.3) inlines JS→Wasm calls into optimized callers by default
 * (--turbo-inline-js-wasm-calls). When such a caller is deoptimized while the
 * Wasm call is on the stack, which happens under concurrent load once object
 * shapes change, V8 aborts the process ("Fatal error ... unreachable code" in
 * Deoptimizer::DoComputeBuiltinContinuation). Reproduced here with 32 checks
 * in flight against the example mesh: the server died within seconds; with
 * the inlining off it served 3 x 30 000 checks. Calls into Cedar keep their
 * ordinary (non-inlined) wrapper, which costs nothing measurable next to an
 * evaluation. Set before any Cedar call is hot, so before it can be inlined.
 */
import v8 from 'node:v8';

v8.setFlagsFromString('--no-turbo-inline-js-wasm-calls');
