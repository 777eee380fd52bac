/**
 * lists/*.txt and bundle.yaml travel through filesToPolicySetSource, so
 * directory and S3 bundles carry them the same way, and a bad one refuses
 * the set like a Cedar error does.
 */
import { describe, expect, it } from 'vitest';
import { filesToPolicySetSource } from '../../src/bundle/format/bundle-files.js';
import { parseBundleSettings } from '../../src/bundle/bundle-settings.js';
import { ActivePolicySet } from '../../src/bundle/active-policy-set.js';
import { PolicySetError } from '../../src/cedar/compile.js';
import { compileBundle } from '../../src/bundle/active-bundle.js';

const files = (extra: Record<string, string>) =>
  new Map(
    Object.entries({ 'p.cedar': 'permit (principal, action, resource);', ...extra }).map(([k, v]) => [
      k,
      Buffer.from(v),
    ]),
  );

describe('bundle lists and settings', () => {
  it('carries lists and the timezone onto the compiled set', () => {
    const set = compileBundle(
      filesToPolicySetSource(
        files({
          'lists/tor-exit.txt': '192.0.2.0/24\n',
          'lists/README.md': 'not a list',
          'bundle.yaml': 'timezone: Asia/Tokyo\n',
        }),
        'v1',
      ),
    );
    expect(set.ipLists?.summary()).toEqual([{ name: 'tor-exit', entries: 1 }]);
    expect(set.ipLists?.match('192.0.2.9')).toEqual(['tor-exit']);
    expect(set.timeZone?.name).toBe('Asia/Tokyo');
    expect(set.timeZone?.fields(Date.parse('2026-01-05T15:00:00Z'))).toEqual({ hour: 0, weekday: 2 });
  });

  it('defaults to UTC and no lists', () => {
    const set = compileBundle(filesToPolicySetSource(files({}), 'v1'));
    expect(set.timeZone?.name).toBe('UTC');
    expect(set.ipLists?.size).toBe(0);
  });

  it.each<{ name: string; extra: Record<string, string>; message: string }>([
    {
      name: 'a bad list line',
      extra: { 'lists/bad.txt': '10.0.0.0/8\n10.0.0.1/40\n' },
      message: 'lists/bad.txt line 2: prefix length /40 is out of range',
    },
    {
      name: 'a nested list',
      extra: { 'lists/feeds/x.txt': '10.0.0.0/8' },
      message: 'lists/feeds/x.txt: lists live directly under lists/',
    },
    {
      name: 'an unknown timezone',
      extra: { 'bundle.yaml': 'timezone: Moon/Base' },
      message: 'bundle.yaml is invalid: bundle.yaml:1:11: timezone: is not an IANA time zone',
    },
    {
      name: 'a timezone that is not a string',
      extra: { 'bundle.yaml': 'timezone: 5' },
      message: 'bundle.yaml is invalid: bundle.yaml:1:11: timezone: Invalid input: expected string',
    },
    { name: 'broken YAML', extra: { 'bundle.yaml': 'timezone: [unclosed' }, message: 'bundle.yaml is not valid YAML' },
  ])('refuses the set for $name, and the previous set keeps serving', ({ extra, message }) => {
    const active = new ActivePolicySet();
    active.activateSource(filesToPolicySetSource(files({}), 'good'));
    let result;
    try {
      result = active.activateSource(filesToPolicySetSource(files(extra), 'bad'));
    } catch (err) {
      expect(err).toBeInstanceOf(PolicySetError);
      result = active.refuse(err as Error, 'bad');
    }
    expect(result.ok).toBe(false);
    expect(active.lastError?.message).toContain(message);
    expect(active.current?.version).toBe('good');
  });

  // Strict on purpose: a misspelt `mdoe: high-alert` silently ignored would leave an incident's control off.
  it('refuses keys it does not know, and anything but a mapping', () => {
    expect(parseBundleSettings('').timezone).toBe('UTC');
    expect(() => parseBundleSettings('owner: team-a\n')).toThrow(/Unrecognized key: "owner"/);
    expect(() => parseBundleSettings('- a\n- b\n')).toThrow(/bundle.yaml is invalid/);
  });
});
