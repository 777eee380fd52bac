/**
 * The pipeline, end to end, without any transport:
 *   CheckRequest → RequestModel → Cedar request → EngineResult → Decision.
 * Used by the gRPC server and by `authz check`, so both answer identically.
 */
import { randomUUID } from 'node:crypto';
import type { Decision } from './decision.js';
import { checkRequestToInput, type InputOptions } from './envoy/check-request.js';
import type { RequestModel } from './envoy/request-model.js';
import type { WireCheckRequest } from './envoy/wire-types.js';
import { inputToCedarRequest, type CedarRequest } from './cedar/cedar-request.js';
import type { CompiledPolicySet } from './cedar/compile.js';
import { denyFor, engineResultToDecision } from './cedar/decide.js';
import { evaluate, type EngineResult } from './cedar/evaluate.js';

export interface Authorization {
  decision: Decision;
  input?: RequestModel;
  cedarRequest?: CedarRequest;
  engine?: EngineResult;
}

export function authorizeInput(input: RequestModel, set: CompiledPolicySet | null, decisionId: string = randomUUID()): Authorization {
  if (!set) return { decision: denyFor('no_policy_set', 'no policy set is active yet', null, decisionId), input };
  const cedarRequest = inputToCedarRequest(input, set);
  let engine: EngineResult;
  try {
    engine = evaluate(set, cedarRequest);
  } catch (err) {
    return { decision: denyFor('evaluation_error', `policy evaluation failed: ${(err as Error).message}`, set.version, decisionId), input, cedarRequest };
  }
  return { decision: engineResultToDecision(set, engine, decisionId), input, cedarRequest, engine };
}

export function authorizeCheckRequest(req: WireCheckRequest, set: CompiledPolicySet | null, options?: InputOptions): Authorization {
  const decisionId = randomUUID();
  const result = checkRequestToInput(req, options);
  if (!result.ok) return { decision: denyFor(result.reason, result.message, set?.version ?? null, decisionId) };
  return authorizeInput(result.input, set, decisionId);
}
