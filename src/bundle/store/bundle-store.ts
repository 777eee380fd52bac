/**
 * The bundle repository in an S3-compatible bucket:
 *
 *   <prefix><name>/<version>/bundle.tar.gz        immutable, one per version
 *   <prefix><name>/<version>/bundle.tar.gz.sig    optional detached signature
 *   <prefix><name>/current.json                   the pointer: which version is active
 *
 * Bundles never change once written; activating or rolling back only rewrites
 * the pointer, so it is one small PUT and every server sees it on its next poll.
 * The class is the only code that knows the key layout; later features add
 * keys beside these (e.g. <prefix><name>/history/) by extending it.
 */
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { segmentProblem } from '../format/manifest.js';
import { describeS3Error, httpStatusOf } from './s3-client.js';

export const TARBALL_FILE = 'bundle.tar.gz';
export const SIGNATURE_FILE = 'bundle.tar.gz.sig';
export const POINTER_FILE = 'current.json';
/** S3 user metadata key carrying the tarball's sha256, written at push and checked at activate. */
export const SHA256_METADATA = 'sha256';
/** The pointer is a few hundred bytes; anything much larger is not ours. */
const MAX_POINTER_BYTES = 64 * 1024;
const MAX_SIGNATURE_BYTES = 4 * 1024;
/** Uploads larger than this report progress (a 1 MiB bundle is already unusually large). */
export const PROGRESS_THRESHOLD_BYTES = 1024 * 1024;
const UPLOAD_CHUNK_BYTES = 64 * 1024;

/**
 * Loose so fields added by later features (e.g. `shadow`) survive a
 * read-modify-write by a version of this code that does not know them.
 */
export const pointerSchema = z.looseObject({
  version: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex sha256'),
  activated_at: z.string(),
  previous: z.string().nullable(),
});

export type BundlePointer = z.infer<typeof pointerSchema>;

export interface StoreLocation {
  bucket: string;
  /** Key prefix, "" or ending in "/". */
  prefix: string;
  /** Bundle name. */
  bundle: string;
}

export type PointerRead =
  | { kind: 'found'; pointer: BundlePointer; etag: string | undefined }
  /** The store answered with something that is not a pointer; the ETag lets a poller skip it until it changes. */
  | { kind: 'invalid'; error: BundlePointerError; etag: string | undefined }
  | { kind: 'not-modified' }
  | { kind: 'missing' };

export interface VersionInfo {
  version: string;
  size: number;
  lastModified: Date | undefined;
  signed: boolean;
}

/** The store answered, but not as asked (or not at all). `status` is the HTTP status when there was one. */
export class BundleStoreError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** The store is fine; what it holds is not a usable pointer. */
export class BundlePointerError extends Error {}

export class VersionExistsError extends BundleStoreError {}

export interface RequestOptions {
  signal?: AbortSignal;
}

export class BundleStore {
  constructor(
    readonly s3: S3Client,
    readonly location: StoreLocation,
  ) {
    const problem = segmentProblem('bundle name', location.bundle);
    if (problem) throw new BundleStoreError(problem);
  }

  get root(): string {
    return `${this.location.prefix}${this.location.bundle}/`;
  }

  versionKey(version: string): string {
    return `${this.root}${version}/${TARBALL_FILE}`;
  }

  signatureKey(version: string): string {
    return `${this.root}${version}/${SIGNATURE_FILE}`;
  }

  pointerKey(): string {
    return `${this.root}${POINTER_FILE}`;
  }

  /** s3://bucket/key, for messages. */
  url(key: string): string {
    return `s3://${this.location.bucket}/${key}`;
  }

  async versionExists(version: string, options: RequestOptions = {}): Promise<boolean> {
    return (await this.head(this.versionKey(version), options)) !== undefined;
  }

  /** Object metadata, or undefined when the key does not exist. */
  async head(
    key: string,
    options: RequestOptions = {},
  ): Promise<{ size: number; metadata: Record<string, string>; lastModified?: Date } | undefined> {
    try {
      const out = await this.s3.send(new HeadObjectCommand({ Bucket: this.location.bucket, Key: key }), {
        abortSignal: options.signal,
      });
      return { size: out.ContentLength ?? 0, metadata: out.Metadata ?? {}, lastModified: out.LastModified };
    } catch (err) {
      if (httpStatusOf(err) === 404) return undefined;
      throw this.storeError('HEAD', key, err);
    }
  }

  /**
   * Upload a new version. Refuses when the version exists: versions are
   * immutable, so a server that cached v3 never meets a different v3. The
   * signature goes first, so a version is never visible without its signature.
   */
  async putVersion(
    version: string,
    tarball: Buffer,
    options: { sha256: string; signature?: Buffer; onProgress?: (sent: number, total: number) => void },
  ): Promise<void> {
    const problem = segmentProblem('version', version);
    if (problem) throw new BundleStoreError(problem);
    const key = this.versionKey(version);
    if (await this.versionExists(version)) {
      throw new VersionExistsError(
        `version ${version} already exists at ${this.url(key)}; versions are immutable, push a new version`,
      );
    }
    if (options.signature)
      await this.put(this.signatureKey(version), options.signature, { contentType: 'application/json' });
    const body =
      options.onProgress && tarball.length > PROGRESS_THRESHOLD_BYTES
        ? progressStream(tarball, options.onProgress)
        : tarball;
    await this.put(key, body, {
      contentType: 'application/gzip',
      contentLength: tarball.length,
      metadata: { [SHA256_METADATA]: options.sha256 },
      // Closes the race between the HEAD above and this PUT on stores with conditional writes (AWS S3, MinIO, R2); others ignore it.
      ifNoneMatch: '*',
    });
  }

  /** The tarball and the sha256 recorded at push (when the store kept it). */
  async getVersion(
    version: string,
    options: RequestOptions & { maxBytes: number },
  ): Promise<{ tarball: Buffer; recordedSha256?: string }> {
    const key = this.versionKey(version);
    const out = await this.get(key, options);
    if (!out) throw new BundleStoreError(`version ${version} does not exist (${this.url(key)})`, 404);
    return { tarball: out.body, recordedSha256: out.metadata[SHA256_METADATA] };
  }

  /**
   * Write (or replace) a version's signature: `bundle sign` re-signs versions
   * pushed unsigned or with an old-format signature. Safe to replace because
   * a signature names the bundle, version and tarball hash it authorises.
   */
  async putSignature(version: string, signature: Buffer): Promise<void> {
    const problem = segmentProblem('version', version);
    if (problem) throw new BundleStoreError(problem);
    await this.put(this.signatureKey(version), signature, { contentType: 'application/json' });
  }

  async getSignature(version: string, options: RequestOptions = {}): Promise<Buffer | undefined> {
    return (await this.get(this.signatureKey(version), { ...options, maxBytes: MAX_SIGNATURE_BYTES }))?.body;
  }

  /**
   * Read the pointer. With `ifNoneMatch` (the ETag of the last read) an
   * unchanged pointer costs one 304 and no body.
   */
  async getPointer(options: RequestOptions & { ifNoneMatch?: string } = {}): Promise<PointerRead> {
    const key = this.pointerKey();
    let out;
    try {
      out = await this.get(key, { ...options, maxBytes: MAX_POINTER_BYTES });
    } catch (err) {
      if (err instanceof BundleStoreError && err.status === 304) return { kind: 'not-modified' };
      throw err;
    }
    if (!out) return { kind: 'missing' };
    try {
      return { kind: 'found', pointer: parsePointer(out.body, this.url(key)), etag: out.etag };
    } catch (err) {
      if (err instanceof BundlePointerError) return { kind: 'invalid', error: err, etag: out.etag };
      throw err;
    }
  }

  /**
   * Write the pointer. `expectEtag` makes it a compare-and-swap where the
   * store supports conditional writes: the ETag read before (the pointer
   * must still be that one) or null (there must be no pointer yet).
   */
  async writePointer(pointer: BundlePointer, expectEtag?: string | null): Promise<void> {
    const parsed = pointerSchema.safeParse(pointer);
    if (!parsed.success)
      throw new BundlePointerError(`refusing to write an invalid pointer: ${parsed.error.issues[0].message}`);
    const condition = expectEtag === null ? { ifNoneMatch: '*' } : expectEtag ? { ifMatch: expectEtag } : {};
    try {
      await this.put(this.pointerKey(), Buffer.from(JSON.stringify(pointer, null, 2) + '\n'), {
        contentType: 'application/json',
        cacheControl: 'no-cache',
        ...condition,
      });
    } catch (err) {
      if (err instanceof BundleStoreError && err.status === 412) {
        throw new BundleStoreError(
          `the pointer ${this.url(this.pointerKey())} changed while this command ran (another activate?); run it again`,
          412,
        );
      }
      throw err;
    }
  }

  /** Every version of this bundle, oldest first. */
  async listVersions(options: RequestOptions = {}): Promise<VersionInfo[]> {
    const versions = new Map<string, VersionInfo>();
    const signed = new Set<string>();
    let token: string | undefined;
    do {
      let out;
      try {
        out = await this.s3.send(
          new ListObjectsV2Command({ Bucket: this.location.bucket, Prefix: this.root, ContinuationToken: token }),
          { abortSignal: options.signal },
        );
      } catch (err) {
        throw this.storeError('LIST', this.root, err);
      }
      for (const o of out.Contents ?? []) {
        const rest = (o.Key ?? '').slice(this.root.length).split('/');
        if (rest.length !== 2) continue;
        const [version, file] = rest;
        if (file === TARBALL_FILE)
          versions.set(version, { version, size: o.Size ?? 0, lastModified: o.LastModified, signed: false });
        else if (file === SIGNATURE_FILE) signed.add(version);
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    for (const v of versions.values()) v.signed = signed.has(v.version);
    return [...versions.values()].sort(
      (a, b) =>
        (a.lastModified?.getTime() ?? 0) - (b.lastModified?.getTime() ?? 0) || a.version.localeCompare(b.version),
    );
  }

  private async get(
    key: string,
    options: RequestOptions & { maxBytes: number; ifNoneMatch?: string },
  ): Promise<{ body: Buffer; etag?: string; metadata: Record<string, string> } | undefined> {
    let out;
    try {
      out = await this.s3.send(
        new GetObjectCommand({ Bucket: this.location.bucket, Key: key, IfNoneMatch: options.ifNoneMatch }),
        {
          abortSignal: options.signal,
        },
      );
    } catch (err) {
      if (httpStatusOf(err) === 404) return undefined;
      throw this.storeError('GET', key, err);
    }
    if ((out.ContentLength ?? 0) > options.maxBytes) {
      (out.Body as Readable | undefined)?.destroy();
      throw new BundleStoreError(
        `${this.url(key)} is ${out.ContentLength} bytes, more than the limit of ${options.maxBytes}`,
      );
    }
    const body = await readBody(out.Body as Readable | undefined, options.maxBytes, this.url(key));
    return { body, etag: out.ETag, metadata: out.Metadata ?? {} };
  }

  private async put(
    key: string,
    body: Buffer | Readable,
    o: {
      contentType: string;
      contentLength?: number;
      metadata?: Record<string, string>;
      cacheControl?: string;
      ifNoneMatch?: string;
      ifMatch?: string;
    },
  ): Promise<void> {
    try {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.location.bucket,
          Key: key,
          Body: body,
          ContentType: o.contentType,
          ContentLength: o.contentLength,
          Metadata: o.metadata,
          CacheControl: o.cacheControl,
          IfNoneMatch: o.ifNoneMatch,
          IfMatch: o.ifMatch,
        }),
      );
    } catch (err) {
      throw this.storeError('PUT', key, err);
    }
  }

  private storeError(op: string, key: string, err: unknown): BundleStoreError {
    const status = httpStatusOf(err);
    return new BundleStoreError(`${op} ${this.url(key)}: ${describeS3Error(err)}`, status);
  }
}

export function parsePointer(body: Buffer, where: string): BundlePointer {
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new BundlePointerError(`${where} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = pointerSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BundlePointerError(`${where}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const problem = segmentProblem('version', parsed.data.version);
  if (problem) throw new BundlePointerError(`${where}: ${problem}`);
  return parsed.data;
}

async function readBody(body: Readable | undefined, maxBytes: number, where: string): Promise<Buffer> {
  if (!body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      body.destroy();
      throw new BundleStoreError(`${where} is larger than the limit of ${maxBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The buffer as a stream of chunks, reporting bytes handed to the HTTP request as it reads them. */
function progressStream(data: Buffer, onProgress: (sent: number, total: number) => void): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= data.length) {
        this.push(null);
        return;
      }
      const chunk = data.subarray(offset, offset + UPLOAD_CHUNK_BYTES);
      offset += chunk.length;
      this.push(chunk);
      onProgress(offset, data.length);
    },
  });
}
