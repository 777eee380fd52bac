import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';

describe('safety settings in the config', () => {
  it('defaults: fail closed, no timeout of our own, enforce, shadow after the reply, every request', () => {
    expect(loadConfig({ env: {} })).toMatchObject({
      failMode: 'closed',
      decisionTimeout: 0,
      dryRun: false,
      shadowEvaluation: 'after-reply',
      shadowSampleRate: 1,
      rateLimitMaxKeys: 100_000,
    });
  });

  it('flags, environment and file spellings all work', () => {
    expect(
      loadConfig({
        flags: { failMode: 'open', decisionTimeout: '50ms', dryRun: true, shadowSampleRate: '0.1' },
        env: {},
      }),
    ).toMatchObject({
      failMode: 'open',
      decisionTimeout: 50,
      dryRun: true,
      shadowSampleRate: 0.1,
    });
    expect(
      loadConfig({ env: { AUTHZ_FAIL_MODE: 'open', AUTHZ_DRY_RUN: 'true', AUTHZ_SHADOW_EVALUATION: 'inline' } }),
    ).toMatchObject({ failMode: 'open', dryRun: true, shadowEvaluation: 'inline' });
  });

  const refusals = [
    {
      name: 'a fail mode that is neither',
      flags: { failMode: 'sometimes' },
      error: /failMode: .*\(from --fail-mode\)/,
    },
    {
      name: 'a timeout that is not a duration',
      flags: { decisionTimeout: 'soon' },
      error: /decisionTimeout: expected a duration .*\(from --decision-timeout\)/,
    },
    {
      name: 'a sample rate above 1',
      flags: { shadowSampleRate: '1.5' },
      error: /shadowSampleRate: .*\(from --shadow-sample-rate\)/,
    },
    { name: 'a sample rate that is not a number', flags: { shadowSampleRate: 'half' }, error: /shadowSampleRate/ },
    { name: 'zero rate limit keys', flags: { rateLimitMaxKeys: '0' }, error: /rateLimitMaxKeys/ },
  ];
  for (const row of refusals)
    it(`refuses ${row.name}, naming the field`, () =>
      expect(() => loadConfig({ flags: row.flags, env: {} })).toThrow(row.error));
});
