import { describe, expect, it } from 'vitest';
import { MANIFEST_FILE, type BundleFileMap } from '../../src/bundle/format/bundle-files.js';
import {
  BundleManifestError,
  buildManifest,
  segmentProblem,
  serialiseManifest,
  verifyManifest,
} from '../../src/bundle/format/manifest.js';

function bundleFiles(): BundleFileMap {
  const files: BundleFileMap = new Map([
    ['a.cedar', Buffer.from('permit (principal, action, resource);')],
    ['bundle.yaml', Buffer.from('mode: enforce\n')],
    ['tests/t.json', Buffer.from('[]')],
  ]);
  const m = buildManifest(files, {
    name: 'mesh',
    version: 'v1',
    created: new Date('2026-01-02T03:04:05Z'),
    cedarVersion: '4.13.0',
  });
  files.set(MANIFEST_FILE, serialiseManifest(m));
  return files;
}

describe('manifest', () => {
  it('lists every file but itself with its sha256, and the build facts', () => {
    const m = verifyManifest(bundleFiles());
    expect(m).toMatchObject({
      format: 1,
      name: 'mesh',
      version: 'v1',
      created: '2026-01-02T03:04:05.000Z',
      cedar_version: '4.13.0',
    });
    expect(Object.keys(m.files)).toEqual(['a.cedar', 'bundle.yaml', 'tests/t.json']);
    expect(m.files['a.cedar']).toMatch(/^[0-9a-f]{64}$/);
  });

  const tampering: { name: string; change: (f: BundleFileMap) => void; error: RegExp }[] = [
    {
      name: 'a changed file',
      change: (f) => f.set('a.cedar', Buffer.from('forbid (principal, action, resource);')),
      error: /a\.cedar does not match its sha256/,
    },
    { name: 'a removed file', change: (f) => f.delete('bundle.yaml'), error: /bundle\.yaml is listed but missing/ },
    {
      name: 'an added file',
      change: (f) => f.set('extra.cedar', Buffer.from('permit (principal, action, resource);')),
      error: /extra\.cedar is not listed/,
    },
    { name: 'no manifest', change: (f) => f.delete(MANIFEST_FILE), error: /has no manifest\.json/ },
    {
      name: 'a manifest that is not JSON',
      change: (f) => f.set(MANIFEST_FILE, Buffer.from('{nope')),
      error: /not valid JSON/,
    },
    {
      name: 'a manifest missing a field',
      change: (f) =>
        f.set(
          MANIFEST_FILE,
          Buffer.from(
            JSON.stringify({ format: 1, name: 'mesh', version: 'v1', created: '2026-01-01T00:00:00Z', files: {} }),
          ),
        ),
      error: /cedar_version/,
    },
  ];
  for (const row of tampering) {
    it(`refuses ${row.name}`, () => {
      const files = bundleFiles();
      row.change(files);
      expect(() => verifyManifest(files)).toThrow(BundleManifestError);
      expect(() => verifyManifest(files)).toThrow(row.error);
    });
  }

  const names: { value: string; ok: boolean }[] = [
    { value: 'v1', ok: true },
    { value: '2026-01-02.3', ok: true },
    { value: 'release_7-rc.1', ok: true },
    { value: '', ok: false },
    { value: '../v1', ok: false },
    { value: 'a/b', ok: false },
    { value: '.hidden', ok: false },
    { value: 'v 1', ok: false },
    { value: 'current.json', ok: false },
    { value: 'history', ok: false },
    { value: 'x'.repeat(129), ok: false },
  ];
  for (const row of names) {
    it(`version "${row.value.slice(0, 20)}" is ${row.ok ? 'accepted' : 'refused'}`, () => {
      expect(segmentProblem('version', row.value) === undefined).toBe(row.ok);
    });
  }
});
