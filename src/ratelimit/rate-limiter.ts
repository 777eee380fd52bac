/**
 * bundle.yaml `rateLimits` applied before Cedar: each rule that matches the
 * request takes a token from the bucket of its key; the first rule whose
 * bucket is empty answers 429. The rates are the active set's mode's
 * (`normal` or `high-alert`), so publishing a set with `mode: high-alert`
 * tightens every server within its poll interval, with no restart.
 *
 * The rates are fleet-wide: each server enforces its share (fleet-share.ts),
 * from the live server count the fleet heartbeat reports, recomputed as
 * servers come and go; a server without a fleet enforces the whole rate.
 * Buckets live per server and survive set reloads: a rule keeps its buckets across versions by
 * name, so a reload neither resets nor doubles anyone's allowance.
 */
import { createHash } from 'node:crypto';
import type { BundleSettings, Mode, RateLimitRule } from '../bundle/bundle-settings.js';
import type { PrincipalRef } from '../context/principal.js';
import type { Decision } from '../decision.js';
import type { RequestModel } from '../envoy/request-model.js';
import { REASONS } from '../reasons.js';
import { BucketStore, type Rate } from './bucket-store.js';
import { fleetShare, normaliseFleetSize, SINGLE_SERVER, type FleetSize } from './fleet-share.js';

export interface RateLimitHit {
  rule: string;
  /** The fleet-wide rate the rule states. */
  rate: Rate;
  /** This server's share of it (the rate itself without a fleet). */
  share: Rate;
  servers: number;
  mode: Mode;
  retryAfterSeconds: number;
}

interface CompiledRule {
  name: string;
  /** bundle.yaml `key`: what the buckets are per (source.ip, principal, service, header:<name>). */
  key: string;
  matches(input: RequestModel, principal: PrincipalRef): boolean;
  keyOf(input: RequestModel, principal: PrincipalRef): string;
  rates: Record<Mode, Rate>;
  /** Shares at the last fleet size seen, per mode: recomputed only when the fleet changes. */
  shares: { servers: number; rates: Record<Mode, Rate> };
}

/** Keys longer than this are hashed, so a huge header cannot inflate the store. */
const MAX_RAW_KEY_LENGTH = 128;

function compileRule(rule: RateLimitRule): CompiledRule {
  const { principalType, service, methods, pathPrefix } = rule.match;
  const methodSet = methods ? new Set(methods) : undefined;
  const matches = (input: RequestModel, principal: PrincipalRef): boolean =>
    (principalType === undefined || principal.type === principalType) &&
    (service === undefined || input.service === service) &&
    (methodSet === undefined || methodSet.has(input.method)) &&
    (pathPrefix === undefined || input.path.startsWith(pathPrefix));
  const rates = { normal: rule.normal, 'high-alert': rule['high-alert'] ?? rule.normal };
  return {
    name: rule.name,
    key: rule.key,
    matches,
    keyOf: keyFunction(rule.key),
    rates,
    shares: { servers: 1, rates },
  };
}

function keyFunction(key: string): CompiledRule['keyOf'] {
  switch (key) {
    case 'source.ip':
      return (input) => input.source.ip ?? '';
    case 'principal':
      return (_input, principal) => `${principal.type}::${principal.id}`;
    case 'service':
      return (input) => input.service;
    default: {
      // header:<name>. A request without the header shares the "" bucket, so leaving it out is no way around the limit.
      const name = key.slice('header:'.length).toLowerCase();
      return (input) => input.headers[name] ?? '';
    }
  }
}

function storeKey(rule: string, value: string): string {
  const v = value.length > MAX_RAW_KEY_LENGTH ? `#${createHash('sha256').update(value).digest('base64url')}` : value;
  return `${rule}\u0000${v}`;
}

export class RateLimiter {
  /** Rules compiled once per settings object (i.e. per activated set), off the hot path after the first request. */
  private readonly compiled = new WeakMap<BundleSettings, CompiledRule[]>();

  constructor(
    readonly buckets: BucketStore = new BucketStore(),
    private readonly fleet: FleetSize = SINGLE_SERVER,
  ) {}

  private rulesFor(settings: BundleSettings): CompiledRule[] {
    let rules = this.compiled.get(settings);
    if (!rules) {
      rules = settings.rateLimits.map(compileRule);
      this.compiled.set(settings, rules);
    }
    return rules;
  }

  /** The rules this request counts against, with this server's share of each rate (for `authz check` to explain). */
  rulesMatching(
    settings: BundleSettings,
    input: RequestModel,
    principal: PrincipalRef,
  ): { rule: string; key: string; share: Rate; mode: Mode }[] {
    if (settings.rateLimiting === 'envoy') return [];
    const servers = normaliseFleetSize(this.fleet.servers());
    const mode = settings.mode;
    return this.rulesFor(settings)
      .filter((r) => r.matches(input, principal))
      .map((r) => ({ rule: r.name, key: r.key, share: fleetShare(r.rates[mode], servers), mode }));
  }

  /** The first rule the request is over, or undefined when it may proceed. */
  check(
    settings: BundleSettings,
    input: RequestModel,
    principal: PrincipalRef,
    nowMs: number,
  ): RateLimitHit | undefined {
    // rateLimiting: envoy — Envoy's global rate-limit service counts, from the descriptors in dynamic_metadata.
    if (settings.rateLimits.length === 0 || settings.rateLimiting === 'envoy') return undefined;
    const mode = settings.mode;
    const servers = normaliseFleetSize(this.fleet.servers());
    for (const rule of this.rulesFor(settings)) {
      if (!rule.matches(input, principal)) continue;
      if (rule.shares.servers !== servers)
        rule.shares = {
          servers,
          rates: {
            normal: fleetShare(rule.rates.normal, servers),
            'high-alert': fleetShare(rule.rates['high-alert'], servers),
          },
        };
      const share = rule.shares.rates[mode];
      const waitMs = this.buckets.take(storeKey(rule.name, rule.keyOf(input, principal)), share, nowMs);
      if (waitMs > 0)
        return {
          rule: rule.name,
          rate: rule.rates[mode],
          share,
          servers,
          mode,
          retryAfterSeconds: Math.ceil(waitMs / 1000),
        };
    }
    return undefined;
  }
}

export const RATE_LIMIT_HEADER = 'x-ratelimit-limit';

export function rateLimitDecision(hit: RateLimitHit, version: string | null, decisionId: string): Decision {
  return {
    kind: 'deny',
    reason: 'rate_limited',
    status: REASONS.rate_limited.status,
    message:
      `rate limit "${hit.rule}" exceeded: ${hit.rate.requestsPerSecond} requests per second, burst ${hit.rate.burst} (${hit.mode} mode)` +
      (hit.servers > 1 ? ` across ${hit.servers} servers` : ''),
    policies: [],
    headers: { 'retry-after': String(hit.retryAfterSeconds), [RATE_LIMIT_HEADER]: String(hit.rate.requestsPerSecond) },
    decisionId,
    version,
  };
}
