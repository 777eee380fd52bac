/**
 * One place that builds the S3 client for any S3-compatible store (AWS S3,
 * MinIO, Ceph, R2, GCS interop, s3rver). Credentials come from the standard
 * AWS chain (environment, shared config/credentials files, SSO, web identity,
 * container and instance metadata); nothing here reads secrets itself.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { redactUserInfo } from '../../observability/redaction.js';

export interface S3Settings {
  /** e.g. http://127.0.0.1:4568; absent for AWS S3 itself. */
  endpoint?: string;
  region?: string;
  /** Path-style URLs (endpoint/bucket/key). Defaults to true when an endpoint is given: most S3-compatible stores need it. */
  forcePathStyle?: boolean;
  /** Attempts per request including the first (SDK default 3). */
  maxAttempts?: number;
}

/** A store that accepts the TCP connection and then says nothing must not hang a poll or a push. */
export const S3_CONNECTION_TIMEOUT_MS = 3_000;
export const S3_REQUEST_TIMEOUT_MS = 30_000;

/** Region used with a custom endpoint when none is configured; such stores ignore it but SigV4 needs one. */
export const DEFAULT_ENDPOINT_REGION = 'us-east-1';

/**
 * The SDK warns on every Node below 22 that *future* SDK releases will need
 * it; we support Node >= 20 with the SDK version in package-lock.json, so the
 * ten-line warning on every store command and server start is noise. An
 * operator who wants it back sets the variable to "false".
 */
const SDK_NODE_WARNING_SWITCH = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

export function createS3Client(settings: S3Settings): S3Client {
  process.env[SDK_NODE_WARNING_SWITCH] ??= 'true';
  const region =
    settings.region ??
    process.env.AWS_REGION ??
    process.env.AWS_DEFAULT_REGION ??
    (settings.endpoint ? DEFAULT_ENDPOINT_REGION : undefined);
  return new S3Client({
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    ...(region ? { region } : {}),
    forcePathStyle: settings.forcePathStyle ?? settings.endpoint !== undefined,
    maxAttempts: settings.maxAttempts ?? 3,
    // Since SDK 3.729 uploads carry CRC32 checksums (aws-chunked for streams) by
    // default, which several S3-compatible stores reject or store verbatim. We
    // check sha256 end to end ourselves, so ask for checksums only where S3 requires them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: S3_CONNECTION_TIMEOUT_MS, requestTimeout: S3_REQUEST_TIMEOUT_MS },
  });
}

/** A short, human message for an SDK error (its name alone is often "Unknown" or "Error"). */
export function describeS3Error(err: unknown): string {
  const e = err as {
    name?: string;
    message?: string;
    code?: string;
    errors?: Error[];
    $metadata?: { httpStatusCode?: number };
  };
  const status = e.$metadata?.httpStatusCode;
  // Node reports a refused dual-stack connect as an AggregateError with an empty message.
  const message = e.message || e.errors?.map((x) => x.message).join('; ') || e.code || String(err);
  const name = e.name && e.name !== 'Error' && e.name !== 'Unknown' && !message.startsWith(e.name) ? `${e.name}: ` : '';
  // An endpoint given as http://user:password@host would otherwise be echoed by connection errors.
  return redactUserInfo(`${name}${message}${status ? ` (HTTP ${status})` : ''}`);
}

export function httpStatusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}
