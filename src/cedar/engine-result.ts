/**
 * What deciding a request yields, whichever evaluator (wasm or the JS engine)
 * produced it. A module of its own so both evaluators can name it without
 * importing each other (the JS engine is compiled by compile.ts, which
 * evaluate.ts reads).
 */
export interface EngineResult {
  decision: 'allow' | 'deny';
  /** Determining policy ids, in policy-set order. */
  determining: string[];
  /** Policies that errored during evaluation (Cedar skips them), in policy-set order. */
  errors: { policyId: string; message: string }[];
}
