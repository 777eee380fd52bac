/**
 * The config values the pipeline and enforcement read, taken from Config in
 * one place, so `authz serve` and `authz check` given the same flags and
 * config file decide alike.
 */
import type { Config } from '../config/schema.js';
import type { SafetyOptions } from '../enforcement/safety-options.js';
import type { BodyLimits } from '../envoy/request-body.js';

export function safetyOptionsFromConfig(config: Config): SafetyOptions {
  return {
    failMode: config.failMode,
    dryRun: config.dryRun,
    decisionTimeoutMs: config.decisionTimeout,
    shadowEvaluation: config.shadowEvaluation,
    shadowSampleRate: config.shadowSampleRate,
    rateLimitMaxKeys: config.rateLimitMaxKeys,
  };
}

/** What a forwarded request body may cost before policies stop seeing it. */
export function bodyLimitsFromConfig(config: Config): BodyLimits {
  return { maxBytes: config.bodyMaxBytes, jsonMaxDepth: config.jsonMaxDepth, jsonMaxKeys: config.jsonMaxKeys };
}
