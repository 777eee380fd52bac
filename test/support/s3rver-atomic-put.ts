/**
 * s3rver writes an object in place and records its ETag before the bytes are
 * flushed, so a GET racing a PUT can return part of the new object under the
 * new ETag. Real S3 (and MinIO, R2, ...) PUTs are atomic. The bundle syncer
 * skips an unreadable pointer until its ETag changes, so such a torn read left
 * a test server on its old version for good (seen in about one full-suite run
 * in three). Here PUTs write a temporary file and rename it into place before
 * the metadata, as an atomic store behaves. Test code only.
 */
import { createRequire } from 'node:module';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

interface S3rverObject {
  bucket: string;
  key: string;
  content: Buffer | Readable;
  metadata: unknown;
}

interface FilesystemStorePrototype {
  getResourcePath(bucket: string, key: string, resource: string): string;
  putMetadata(bucket: string, key: string, metadata: unknown, md5: string): Promise<void>;
  putObject(object: S3rverObject): Promise<{ size: number; md5: string }>;
}

const require = createRequire(import.meta.url);
const store = require('s3rver/lib/stores/filesystem.js') as { prototype: FilesystemStorePrototype };

store.prototype.putObject = async function atomicPutObject(this: FilesystemStorePrototype, object: S3rverObject) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await fs.mkdir(path.dirname(objectPath), { recursive: true });
  const tmp = `${objectPath}.${randomBytes(6).toString('hex')}.tmp`;
  const md5 = createHash('md5');
  let size = 0;
  const content = object.content;
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of Buffer.isBuffer(content) ? [content] : (content as AsyncIterable<Buffer>)) {
      md5.update(chunk);
      size += chunk.length;
      yield chunk;
    }
  };
  await pipeline(counted(), createWriteStream(tmp));
  await fs.rename(tmp, objectPath);
  const digest = md5.digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, digest);
  return { size, md5: digest };
};
