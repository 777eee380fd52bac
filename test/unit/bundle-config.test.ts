import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load-config.js';

describe('bundle store settings', () => {
  const ok: { name: string; flags: Record<string, unknown>; env?: Record<string, string>; expected: Record<string, unknown> }[] = [
    { name: 'defaults (directory source)', flags: {}, expected: { policies: 'policies', prefix: 'bundles/', pollInterval: 5000 } },
    {
      name: 'an S3 source from flags',
      flags: { bucket: 'b1', bundle: 'mesh', s3Endpoint: 'http://127.0.0.1:9000', pollInterval: '2s', stateDir: '/var/lib/authz' },
      expected: { bucket: 'b1', bundle: 'mesh', s3Endpoint: 'http://127.0.0.1:9000', pollInterval: 2000, stateDir: '/var/lib/authz' },
    },
    { name: 'from the environment', flags: {}, env: { AUTHZ_BUCKET: 'b2', AUTHZ_BUNDLE: 'mesh', AUTHZ_S3_FORCE_PATH_STYLE: 'false' }, expected: { bucket: 'b2', s3ForcePathStyle: false } },
    { name: 'a prefix gets its slash', flags: { bucket: 'b', bundle: 'm', prefix: 'team/policies' }, expected: { prefix: 'team/policies/' } },
    { name: 'an empty prefix is the bucket root', flags: { bucket: 'b', bundle: 'm', prefix: '' }, expected: { prefix: '' } },
  ];
  for (const row of ok) {
    it(row.name, () => {
      expect(loadConfig({ flags: row.flags, env: row.env ?? {} })).toMatchObject(row.expected);
    });
  }

  it('without bucket and bundle there is no S3 source', () => {
    const c = loadConfig({ flags: {}, env: {} });
    expect(c.bucket).toBeUndefined();
    expect(c.bundle).toBeUndefined();
  });

  const bad: { name: string; flags: Record<string, unknown>; error: RegExp }[] = [
    { name: 'a bucket without a bundle', flags: { bucket: 'b' }, error: /bundle: required with bucket/ },
    { name: 'a bundle without a bucket', flags: { bundle: 'm' }, error: /bucket: required with bundle/ },
    { name: 'a verify key without the S3 source', flags: { verifyKey: 'k.pub' }, error: /verifyKey: only applies to the S3 bundle source; set bucket and bundle too \(from --verify-key\)/ },
    { name: 'a poll interval too short', flags: { bucket: 'b', bundle: 'm', pollInterval: '10ms' }, error: /pollInterval: must be at least 100ms \(from --poll-interval\)/ },
    { name: 'a poll interval that is not a duration', flags: { bucket: 'b', bundle: 'm', pollInterval: 'often' }, error: /pollInterval: expected a duration/ },
    { name: 'an endpoint that is not a URL', flags: { bucket: 'b', bundle: 'm', s3Endpoint: 'minio:9000' }, error: /s3Endpoint: expected an http\(s\) URL/ },
    { name: 'a bundle name with a slash', flags: { bucket: 'b', bundle: 'a/b' }, error: /bundle: expected letters, digits/ },
    { name: 'a prefix with a leading slash', flags: { bucket: 'b', bundle: 'm', prefix: '/x/' }, error: /prefix: must not start with "\/"/ },
  ];
  for (const row of bad) {
    it(`refuses ${row.name}`, () => {
      expect(() => loadConfig({ flags: row.flags, env: {} })).toThrow(ConfigError);
      expect(() => loadConfig({ flags: row.flags, env: {} })).toThrow(row.error);
    });
  }
});
