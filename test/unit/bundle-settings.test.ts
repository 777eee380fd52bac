import { describe, expect, it } from 'vitest';
import { DEFAULT_BUNDLE_SETTINGS, parseBundleSettings } from '../../src/bundle/bundle-settings.js';

describe('bundle.yaml', () => {
  it('defaults when absent or empty', () => {
    expect(parseBundleSettings(undefined)).toEqual({
      mode: 'normal',
      enforcement: 'enforce',
      timezone: 'UTC',
      rateLimits: [],
      rateLimiting: 'server',
      allowEffects: [],
      services: {},
      gateways: [],
      frontProxy: true,
      clusterDomain: 'cluster.local',
    });
    expect(parseBundleSettings('')).toEqual(DEFAULT_BUNDLE_SETTINGS);
  });

  it('reads mode, enforcement, timezone and rate limits', () => {
    const s = parseBundleSettings(`
mode: high-alert
enforcement: dry-run
timezone: Europe/Berlin
rateLimits:
  - name: anon
    match: { principalType: Anonymous, methods: [get] }
    key: source.ip
    normal: { requestsPerSecond: 100, burst: 200 }
    high-alert: { requestsPerSecond: 20, burst: 40 }
`);
    expect(s).toMatchObject({ mode: 'high-alert', enforcement: 'dry-run', timezone: 'Europe/Berlin' });
    expect(s.rateLimits[0]).toMatchObject({
      name: 'anon',
      match: { principalType: 'Anonymous', methods: ['GET'] },
      key: 'source.ip',
    });
  });

  const bad = [
    { name: 'unknown mode', text: 'mode: panic', error: /mode/ },
    { name: 'bad time zone', text: 'timezone: Mars/Olympus', error: /timezone: is not an IANA time zone/ },
    {
      name: 'bad rate limit key',
      text: 'rateLimits: [{ name: a, key: cookie, normal: { requestsPerSecond: 1, burst: 1 } }]',
      error: /rateLimits\.0\.key/,
    },
    {
      name: 'zero rate',
      text: 'rateLimits: [{ name: a, key: service, normal: { requestsPerSecond: 0, burst: 1 } }]',
      error: /requestsPerSecond/,
    },
    {
      name: 'duplicate rule names',
      text: 'rateLimits: [{ name: a, key: service, normal: { requestsPerSecond: 1, burst: 1 } }, { name: a, key: service, normal: { requestsPerSecond: 1, burst: 1 } }]',
      error: /unique/,
    },
    { name: 'unknown key', text: 'mdoe: normal', error: /mdoe/ },
    { name: 'not YAML', text: 'a: [', error: /not valid YAML/ },
  ];
  for (const row of bad)
    it(`refuses ${row.name}`, () => expect(() => parseBundleSettings(row.text)).toThrow(row.error));
});

describe('bundle.yaml names checked against what requests carry', () => {
  const rule = (principalType: string) =>
    `rateLimits:\n  - name: r\n    match: { principalType: ${principalType} }\n    key: source.ip\n    normal: { requestsPerSecond: 1, burst: 1 }\n`;
  it.each([
    {
      name: 'a cut-short type',
      type: 'Anon',
      expected:
        'bundle.yaml:3:29: rateLimits.0.match.principalType: "Anon" is not a principal type requests carry (Workload, User, Anonymous); did you mean "Anonymous"?',
    },
    {
      name: 'a misspelt type',
      type: 'Wrokload',
      expected:
        '"Wrokload" is not a principal type requests carry (Workload, User, Anonymous); did you mean "Workload"?',
    },
    {
      name: 'a type no request has',
      type: 'Robot',
      expected: '"Robot" is not a principal type requests carry (Workload, User, Anonymous)',
    },
  ])('refuses $name', ({ type, expected }) => {
    expect(() => parseBundleSettings(rule(type))).toThrow(expected);
  });
  it.each(['Workload', 'User', 'Anonymous'])('accepts %s', (type) => {
    expect(parseBundleSettings(rule(type)).rateLimits[0].match.principalType).toBe(type);
  });
});
