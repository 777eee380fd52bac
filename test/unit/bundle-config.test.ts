import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load-config.js';
import { pollIntervalOf } from '../../src/config/schema.js';

describe('bundle store settings', () => {
  const ok: {
    name: string;
    flags: Record<string, unknown>;
    env?: Record<string, string>;
    expected: Record<string, unknown>;
  }[] = [
    { name: 'defaults (directory source)', flags: {}, expected: { policies: 'policies', prefix: 'bundles/' } },
    {
      name: 'push to one NATS server',
      flags: { bucket: 'b', bundle: 'm', notify: 'nats://nats:4222' },
      expected: { notify: ['nats://nats:4222'] },
    },
    {
      name: 'push to several, with TLS and credentials, from the environment',
      flags: {},
      env: {
        AUTHZ_BUCKET: 'b',
        AUTHZ_BUNDLE: 'm',
        AUTHZ_NOTIFY: 'tls://n1:4222, tls://user:pw@n2:4222',
        AUTHZ_NOTIFY_CREDS: '/etc/nats/authz.creds',
        AUTHZ_NOTIFY_TLS_CA: '/etc/nats/ca.pem',
      },
      expected: {
        notify: ['tls://n1:4222', 'tls://user:pw@n2:4222'],
        notifyCreds: '/etc/nats/authz.creds',
        notifyTlsCa: '/etc/nats/ca.pem',
      },
    },
    {
      name: 'a max policy age',
      flags: { bucket: 'b', bundle: 'm', maxPolicyAge: '10m' },
      expected: { maxPolicyAge: 600_000 },
    },
    {
      name: 'an S3 source from flags',
      flags: {
        bucket: 'b1',
        bundle: 'mesh',
        s3Endpoint: 'http://127.0.0.1:9000',
        pollInterval: '2s',
        stateDir: '/var/lib/authz',
      },
      expected: {
        bucket: 'b1',
        bundle: 'mesh',
        s3Endpoint: 'http://127.0.0.1:9000',
        pollInterval: 2000,
        stateDir: '/var/lib/authz',
      },
    },
    {
      name: 'from the environment',
      flags: {},
      env: { AUTHZ_BUCKET: 'b2', AUTHZ_BUNDLE: 'mesh', AUTHZ_S3_FORCE_PATH_STYLE: 'false' },
      expected: { bucket: 'b2', s3ForcePathStyle: false },
    },
    {
      name: 'a prefix gets its slash',
      flags: { bucket: 'b', bundle: 'm', prefix: 'team/policies' },
      expected: { prefix: 'team/policies/' },
    },
    {
      name: 'an empty prefix is the bucket root',
      flags: { bucket: 'b', bundle: 'm', prefix: '' },
      expected: { prefix: '' },
    },
  ];
  for (const row of ok) {
    it(row.name, () => {
      expect(loadConfig({ flags: row.flags, env: row.env ?? {} })).toMatchObject(row.expected);
    });
  }

  const intervals: { name: string; flags: Record<string, unknown>; expected: number }[] = [
    { name: 'polling alone', flags: { bucket: 'b', bundle: 'm' }, expected: 5000 },
    {
      name: 'with push, polling is the safety net',
      flags: { bucket: 'b', bundle: 'm', notify: 'nats://n:4222' },
      expected: 10_000,
    },
    {
      name: 'as set, with or without push',
      flags: { bucket: 'b', bundle: 'm', notify: 'nats://n:4222', pollInterval: '1s' },
      expected: 1000,
    },
  ];
  for (const row of intervals) {
    it(`poll interval: ${row.name}`, () => {
      expect(pollIntervalOf(loadConfig({ flags: row.flags, env: {} }))).toBe(row.expected);
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
    {
      name: 'a verify key without the S3 source',
      flags: { verifyKey: 'k.pub' },
      error: /verifyKey: only applies to the S3 bundle source; set bucket and bundle too \(from --verify-key\)/,
    },
    {
      name: 'a poll interval too short',
      flags: { bucket: 'b', bundle: 'm', pollInterval: '10ms' },
      error: /pollInterval: must be at least 100ms \(from --poll-interval\)/,
    },
    {
      name: 'a poll interval that is not a duration',
      flags: { bucket: 'b', bundle: 'm', pollInterval: 'often' },
      error: /pollInterval: expected a duration/,
    },
    {
      name: 'a notify URL that is not nats://',
      flags: { bucket: 'b', bundle: 'm', notify: 'http://nats:4222' },
      error: /notify: expected nats:\/\/HOST:PORT .*got "http:\/\/nats:4222" \(from --notify\)/,
    },
    {
      name: 'a notify URL without a port',
      flags: { bucket: 'b', bundle: 'm', notify: 'nats://nats' },
      error: /notify: expected nats:\/\/HOST:PORT/,
    },
    {
      name: 'notify without the S3 source',
      flags: { notify: 'nats://n:4222' },
      error: /notify: only applies to the S3 bundle source/,
    },
    {
      name: 'NATS credentials without notify',
      flags: { bucket: 'b', bundle: 'm', notifyCreds: 'x.creds' },
      error: /notifyCreds: only applies with notify/,
    },
    {
      name: 'a NATS client certificate without its key',
      flags: { bucket: 'b', bundle: 'm', notify: 'tls://n:4222', notifyTlsCert: 'c.pem' },
      error: /notifyTlsKey: notifyTlsCert and notifyTlsKey must be given together/,
    },
    {
      name: 'a max policy age without the S3 source',
      flags: { maxPolicyAge: '10m' },
      error: /maxPolicyAge: only applies to the S3 bundle source/,
    },
    {
      name: 'a max policy age not longer than the poll interval',
      flags: { bucket: 'b', bundle: 'm', pollInterval: '2s', maxPolicyAge: '2s' },
      error: /maxPolicyAge: must be longer than the poll interval \(2000ms\)/,
    },
    {
      name: 'a max policy age that is not a duration',
      flags: { bucket: 'b', bundle: 'm', maxPolicyAge: 'forever' },
      error: /maxPolicyAge: expected a duration .*\(from --max-policy-age\)/,
    },
    {
      name: 'an endpoint that is not a URL',
      flags: { bucket: 'b', bundle: 'm', s3Endpoint: 'minio:9000' },
      error: /s3Endpoint: expected an http\(s\) URL/,
    },
    {
      name: 'a bundle name with a slash',
      flags: { bucket: 'b', bundle: 'a/b' },
      error: /bundle: expected letters, digits/,
    },
    {
      name: 'a prefix with a leading slash',
      flags: { bucket: 'b', bundle: 'm', prefix: '/x/' },
      error: /prefix: must not start with "\/"/,
    },
  ];
  for (const row of bad) {
    it(`refuses ${row.name}`, () => {
      expect(() => loadConfig({ flags: row.flags, env: {} })).toThrow(ConfigError);
      expect(() => loadConfig({ flags: row.flags, env: {} })).toThrow(row.error);
    });
  }
});
