import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { actorName, historyTimestamp } from '../../src/bundle/store/bundle-history.js';
import type { BundleFileMap } from '../../src/bundle/format/bundle-files.js';
import { filesToPolicySetSource } from '../../src/bundle/format/bundle-files.js';
import { authorizeCheckRequest } from '../../src/pipeline/authorize-input.js';
import { compileBundle } from '../../src/bundle/active-bundle.js';
import { simpleRequestToCheckRequest } from '../../src/envoy/simple-request.js';
import { derivedVersion } from '../../src/operator/derived-version.js';
import {
  listLockdowns,
  lockdownPolicyText,
  parseMethods,
  withLockdown,
  withoutLockdown,
  type Lockdown,
} from '../../src/operator/lockdown.js';
import { describeRateLimits, settingsOf, withMode } from '../../src/operator/mode.js';
import { EXAMPLE_POLICIES } from '../support/policy-dir.js';

function exampleFiles(): BundleFileMap {
  const files: BundleFileMap = new Map();
  for (const name of [
    'schema.cedarschema',
    'entities.json',
    'mesh.cedar',
    'frontend.cedar',
    'orders.cedar',
    'payments.cedar',
    'bundle.yaml',
  ]) {
    files.set(name, readFileSync(path.join(EXAMPLE_POLICIES, name)));
  }
  return files;
}

const LOCK: Lockdown = {
  service: 'orders',
  methods: ['POST', 'PUT', 'PATCH', 'DELETE'],
  message: 'orders is "migrating" \\ back soon',
  retryAfterSeconds: 120,
  by: 'alice',
  at: '2026-11-28T09:00:00.000Z',
  reason: 'db migration',
};

describe('lockdown policies', () => {
  it('the generated forbid refuses writes with 503, the message and Retry-After, and leaves reads alone (example schema)', () => {
    const set = compileBundle(filesToPolicySetSource(withLockdown(exampleFiles(), LOCK), 'v'));
    const ask = (method: string, host: string) =>
      authorizeCheckRequest(
        simpleRequestToCheckRequest({
          method,
          path: '/orders/1',
          host,
          principal: 'spiffe://cluster.local/ns/shop/sa/frontend',
        }),
        set,
      ).decision;
    expect(ask('POST', 'orders')).toMatchObject({
      kind: 'deny',
      status: 503,
      message: LOCK.message,
      policies: ['lockdown-orders'],
      headers: { 'retry-after': '120' },
    });
    expect(ask('GET', 'orders')).toMatchObject({ kind: 'allow' });
    expect(ask('PATCH', 'orders')).toMatchObject({ kind: 'deny', status: 503 });
  });

  it('reads back what was written, and lifting removes only that service', () => {
    const files = withLockdown(withLockdown(exampleFiles(), LOCK), {
      ...LOCK,
      service: 'payments',
      methods: ['DELETE'],
      reason: null,
    });
    expect(listLockdowns(files)).toEqual([LOCK, { ...LOCK, service: 'payments', methods: ['DELETE'], reason: null }]);
    const lifted = withoutLockdown(files, 'orders')!;
    expect(listLockdowns(lifted).map((l) => l.service)).toEqual(['payments']);
    expect(withoutLockdown(lifted, 'orders')).toBeUndefined();
  });

  it('locking a locked service again replaces its lockdown', () => {
    const twice = withLockdown(withLockdown(exampleFiles(), LOCK), { ...LOCK, methods: ['DELETE'] });
    expect(listLockdowns(twice)).toEqual([{ ...LOCK, methods: ['DELETE'] }]);
  });

  const refusals = [
    {
      name: 'a service name that is not a plain name',
      l: { ...LOCK, service: 'orders") permit' },
      error: /service "orders"\) permit" must be/,
    },
    {
      name: 'a message with a line break',
      l: { ...LOCK, message: 'a\nb' },
      error: /--message must not contain control characters/,
    },
  ];
  for (const row of refusals)
    it(`refuses ${row.name}`, () => expect(() => lockdownPolicyText(row.l)).toThrow(row.error));

  it('methods: default writes, upper-cased, de-duplicated, checked', () => {
    expect(parseMethods(undefined)).toEqual(['POST', 'PUT', 'PATCH', 'DELETE']);
    expect(parseMethods('post, Delete,POST')).toEqual(['POST', 'DELETE']);
    expect(() => parseMethods(' , ')).toThrow(/names no method/);
    expect(() => parseMethods('GET;rm')).toThrow(/not an HTTP method/);
  });
});

describe('mode switch', () => {
  it('switches bundle.yaml, keeping its comments and rules', () => {
    const files = exampleFiles();
    const switched = withMode(files, 'high-alert')!;
    const text = switched.get('bundle.yaml')!.toString();
    expect(text).toContain('# Settings that travel with this policy set');
    expect(text).toMatch(/^mode: high-alert$/m);
    expect(settingsOf(switched)).toMatchObject({ mode: 'high-alert', rateLimits: settingsOf(files).rateLimits });
    expect(describeRateLimits(settingsOf(switched), 'high-alert')).toEqual(['anonymous-per-ip 10/s burst 20']);
    expect(withMode(switched, 'high-alert')).toBeUndefined();
    expect(withMode(switched, 'normal')!.get('bundle.yaml')!.toString()).toMatch(/^mode: normal$/m);
  });

  it('a bundle without bundle.yaml gets one', () => {
    const files = exampleFiles();
    files.delete('bundle.yaml');
    expect(withMode(files, 'high-alert')!.get('bundle.yaml')!.toString()).toBe('mode: high-alert\n');
  });
});

describe('names and records', () => {
  const at = new Date('2026-11-28T09:23:57.123Z');
  const rows = [
    { base: 'v7', tag: 'lockdown-orders', expected: 'v7--lockdown-orders-20261128092357' },
    { base: 'v7--lockdown-orders-20261128092357', tag: 'high-alert', expected: 'v7--high-alert-20261128092357' },
    { base: 'dir-0123456789ab', tag: 'unlock-a.b', expected: 'dir-0123456789ab--unlock-a.b-20261128092357' },
  ];
  for (const row of rows)
    it(`${row.base} + ${row.tag}`, () => expect(derivedVersion(row.base, row.tag, at)).toBe(row.expected));

  it('derived names stay valid version names however long the base', () => {
    const v = derivedVersion('x'.repeat(128), 'lockdown-' + 'y'.repeat(100), at, 2);
    expect(v.length).toBeLessThanOrEqual(128);
    expect(v).toMatch(/^x+--lockdown-y+-20261128092357-3$/);
  });

  it('history keys sort in time order; the actor is --actor, else $USER', () => {
    expect(historyTimestamp(at)).toBe('20261128T092357.123Z');
    expect(historyTimestamp(new Date('2026-11-28T10:00:00Z')) > historyTimestamp(at)).toBe(true);
    expect(actorName(' bob ', { USER: 'alice' })).toBe('bob');
    expect(actorName(undefined, { USER: 'alice' })).toBe('alice');
  });
});

describe('mode names', () => {
  it('a misspelt mode is refused with the closest one', async () => {
    const { parseMode } = await import('../../src/operator/mode.js');
    expect(() => parseMode('hgh-alert')).toThrow(
      'mode must be one of normal, high-alert, not "hgh-alert"; did you mean "high-alert"?',
    );
  });
});
