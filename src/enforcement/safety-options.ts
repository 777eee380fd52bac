/**
 * The server-wide safety settings the Check handler applies, taken from Config.
 * Named defaults live here so the schema, the handler and the docs agree.
 */
import type { FailMode } from './route-settings.js';

export type ShadowEvaluation = 'after-reply' | 'inline';

export interface SafetyOptions {
  /** `--fail-mode`: what a route without context_extensions["fail_mode"] does when the engine cannot decide. */
  failMode: FailMode;
  /** `--dry-run`: answer every rule-made deny as an allow (logged as the deny). */
  dryRun: boolean;
  /** `--decision-timeout` in ms; 0 leaves only the gRPC deadline Envoy sends. */
  decisionTimeoutMs: number;
  /** Shadow evaluations run after the answer is sent (default) or before it. */
  shadowEvaluation: ShadowEvaluation;
  /** Fraction of eligible requests that get a shadow evaluation. */
  shadowSampleRate: number;
  /** Bound on rate limit buckets held in memory. */
  rateLimitMaxKeys: number;
}

export const DEFAULT_FAIL_MODE: FailMode = 'closed';
/** 0: no server-side budget of our own; Envoy's ext_authz timeout (the gRPC deadline) still applies. */
export const DEFAULT_DECISION_TIMEOUT_MS = 0;
export const DEFAULT_SHADOW_EVALUATION: ShadowEvaluation = 'after-reply';
export const DEFAULT_SHADOW_SAMPLE_RATE = 1;
/**
 * Shadow evaluations waiting to run after their answers. Past this the server
 * is saturated, and shadow work is dropped (and counted) rather than queued
 * without bound behind live traffic.
 */
export const MAX_PENDING_SHADOW_JOBS = 1000;

export const DEFAULT_SAFETY_OPTIONS: SafetyOptions = Object.freeze({
  failMode: DEFAULT_FAIL_MODE,
  dryRun: false,
  decisionTimeoutMs: DEFAULT_DECISION_TIMEOUT_MS,
  shadowEvaluation: DEFAULT_SHADOW_EVALUATION,
  shadowSampleRate: DEFAULT_SHADOW_SAMPLE_RATE,
  rateLimitMaxKeys: 100_000,
});
