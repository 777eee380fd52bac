import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LAST_GOOD_FILE, LastGoodStore } from '../../src/bundle/sources/last-good.js';
import { sha256 } from '../../src/bundle/format/manifest.js';

const pointer = (version: string, data: Buffer) => ({
  version,
  sha256: sha256(data),
  activated_at: '2026-01-01T00:00:00Z',
  previous: null,
});

describe('LastGoodStore', () => {
  it('keeps exactly the last saved bundle and gives it back', async () => {
    const lg = new LastGoodStore(mkdtempSync(path.join(tmpdir(), 'authz-lg-')), 'mesh');
    expect(await lg.load()).toBeUndefined();
    const v1 = Buffer.from('tarball one');
    const v2 = Buffer.from('tarball two');
    await lg.save(v1, pointer('v1', v1));
    await lg.save(v2, pointer('v2', v2), Buffer.from('c2lnbmF0dXJl\n'));
    const got = await lg.load();
    expect(got?.record).toMatchObject({
      bundle: 'mesh',
      version: 'v2',
      sha256: sha256(v2),
      signature: 'c2lnbmF0dXJl\n',
    });
    expect(got?.tarball.equals(v2)).toBe(true);
    expect(readdirSync(lg.dir).sort()).toEqual([`${sha256(v2)}.tar.gz`, LAST_GOOD_FILE]);
    expect(await lg.loadIfHash(sha256(v2))).toBeDefined();
    expect(await lg.loadIfHash(sha256(v1))).toBeUndefined();
  });

  it('refuses a tarball changed on disk', async () => {
    const lg = new LastGoodStore(mkdtempSync(path.join(tmpdir(), 'authz-lg-')), 'mesh');
    const v1 = Buffer.from('tarball one');
    await lg.save(v1, pointer('v1', v1));
    writeFileSync(path.join(lg.dir, `${sha256(v1)}.tar.gz`), 'tampered');
    await expect(lg.load()).rejects.toThrow(/does not match its sha256/);
  });

  it('refuses a damaged record', async () => {
    const lg = new LastGoodStore(mkdtempSync(path.join(tmpdir(), 'authz-lg-')), 'mesh');
    const v1 = Buffer.from('tarball one');
    await lg.save(v1, pointer('v1', v1));
    const file = path.join(lg.dir, LAST_GOOD_FILE);
    writeFileSync(file, readFileSync(file, 'utf8').slice(0, 20));
    await expect(lg.load()).rejects.toThrow(/is damaged/);
  });
});
