import { promisify } from 'node:util';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import {
  BundleArchiveError,
  packBundle,
  unpackBundle,
  type ArchiveLimits,
} from '../../src/bundle/format/bundle-archive.js';

const gzip = promisify(zlib.gzip);

type RawEntry = { name: string; type?: tar.Header['type']; data?: string; linkname?: string };

/** A tarball written entry by entry, bypassing packBundle's own checks: what an attacker could upload. */
async function rawTarGz(entries: RawEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const isFile = !e.type || e.type === 'file';
    const data = Buffer.from(isFile ? (e.data ?? '') : '');
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name: e.name, type: e.type ?? 'file', size: data.length, linkname: e.linkname }, data, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }
  pack.finalize();
  await done;
  return gzip(Buffer.concat(chunks));
}

const POLICY = 'permit (principal, action, resource);';

describe('packBundle / unpackBundle', () => {
  it('round-trips files, including nested paths and binary content', async () => {
    const files = new Map([
      ['a.cedar', Buffer.from(POLICY)],
      ['tests/t.json', Buffer.from('[]')],
      ['bin/blob', Buffer.from([0, 255, 1, 254])],
    ]);
    const out = await unpackBundle(await packBundle(files, new Date('2026-01-01T00:00:00Z')));
    expect([...out.keys()].sort()).toEqual(['a.cedar', 'bin/blob', 'tests/t.json']);
    for (const [k, v] of files) expect(out.get(k)!.equals(v)).toBe(true);
  });

  it('packs the same files to the same bytes (so the same content has the same sha256)', async () => {
    const when = new Date('2026-01-01T00:00:00Z');
    const a = await packBundle(
      new Map([
        ['b.cedar', Buffer.from('x')],
        ['a.cedar', Buffer.from('y')],
      ]),
      when,
    );
    const b = await packBundle(
      new Map([
        ['a.cedar', Buffer.from('y')],
        ['b.cedar', Buffer.from('x')],
      ]),
      when,
    );
    expect(a.equals(b)).toBe(true);
  });

  it('accepts "./" prefixes and directory entries, as `tar -C dir .` writes them', async () => {
    const tgz = await rawTarGz([
      { name: './', type: 'directory' },
      { name: './p/', type: 'directory' },
      { name: './p/a.cedar', data: POLICY },
    ]);
    expect([...(await unpackBundle(tgz)).keys()]).toEqual(['p/a.cedar']);
  });
});

describe('unpackBundle refuses hostile or broken archives', () => {
  const small: ArchiveLimits = { maxArchiveBytes: 64 * 1024, maxUnpackedBytes: 64 * 1024, maxFiles: 3 };
  const rows: { name: string; archive: () => Promise<Buffer>; limits?: ArchiveLimits; error: RegExp }[] = [
    {
      name: 'parent traversal',
      archive: () => rawTarGz([{ name: '../evil.cedar', data: POLICY }]),
      error: /unsafe path "\.\.\/evil\.cedar".*"\.\."/,
    },
    {
      name: 'traversal in the middle',
      archive: () => rawTarGz([{ name: 'a/../../evil.cedar', data: POLICY }]),
      error: /unsafe path/,
    },
    {
      name: 'absolute path',
      archive: () => rawTarGz([{ name: '/etc/evil.cedar', data: POLICY }]),
      error: /absolute path/,
    },
    { name: 'backslash path', archive: () => rawTarGz([{ name: '..\\evil.cedar', data: POLICY }]), error: /backslash/ },
    {
      name: 'symlink',
      archive: () => rawTarGz([{ name: 'link.cedar', type: 'symlink', linkname: '/etc/passwd' }]),
      error: /symlink entry; a bundle may hold regular files only/,
    },
    {
      name: 'hard link',
      archive: () =>
        rawTarGz([
          { name: 'a.cedar', data: POLICY },
          { name: 'b.cedar', type: 'link', linkname: 'a.cedar' },
        ]),
      error: /link entry/,
    },
    {
      name: 'device',
      archive: () => rawTarGz([{ name: 'dev', type: 'character-device' }]),
      error: /character-device entry/,
    },
    { name: 'fifo', archive: () => rawTarGz([{ name: 'pipe', type: 'fifo' }]), error: /fifo entry/ },
    {
      name: 'duplicate file',
      archive: () =>
        rawTarGz([
          { name: 'a.cedar', data: POLICY },
          { name: './a.cedar', data: 'forbid (principal, action, resource);' },
        ]),
      error: /appears twice/,
    },
    {
      name: 'too many files',
      archive: () => rawTarGz(['a', 'b', 'c', 'd'].map((n) => ({ name: `${n}.cedar`, data: POLICY }))),
      limits: small,
      error: /more than 3 files/,
    },
    {
      name: 'unpacked size over the limit',
      archive: () => rawTarGz([{ name: 'big.cedar', data: 'x'.repeat(70 * 1024) }]),
      limits: small,
      error: /unpacks to more than 65536 bytes/,
    },
    {
      name: 'gzip bomb',
      // 50 MiB of zeros compresses to ~50 KiB: refused while inflating, never held in memory.
      archive: () => gzip(Buffer.alloc(50 * 1024 * 1024)),
      limits: small,
      error: /unpacks to more than 65536 bytes/,
    },
    {
      name: 'archive over the download limit',
      archive: async () => Buffer.alloc(65 * 1024, 1),
      limits: small,
      error: /65536/,
    },
    { name: 'not gzip', archive: async () => Buffer.from('this is not a tarball'), error: /not a valid gzip file/ },
    {
      name: 'truncated gzip',
      archive: async () => (await rawTarGz([{ name: 'a.cedar', data: POLICY }])).subarray(0, 40),
      error: /not a valid gzip file/,
    },
    {
      name: 'gzip of something that is not tar',
      archive: () => gzip(Buffer.from('hello '.repeat(200))),
      error: /not a valid tar archive/,
    },
    { name: 'empty archive', archive: () => rawTarGz([]), error: /holds no files/ },
  ];

  for (const row of rows) {
    it(row.name, async () => {
      const archive = await row.archive();
      const err = await unpackBundle(archive, row.limits).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BundleArchiveError);
      expect((err as Error).message).toMatch(row.error);
    });
  }

  it('packBundle refuses unsafe names too, so a bad map never becomes a tarball', async () => {
    await expect(packBundle(new Map([['../x.cedar', Buffer.from(POLICY)]]), new Date())).rejects.toThrow(/unsafe path/);
  });
});
