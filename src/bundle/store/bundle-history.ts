/**
 * The audit trail, kept in the store beside the bundles it is about:
 *
 *   <prefix><name>/history/<timestamp>-<id>.json
 *
 * One small immutable object per change of what the fleet enforces (activate,
 * rollback, shadow, lockdown, mode): what was done, from which version to
 * which, by whom and why. Keys start with a fixed-width UTC timestamp, so the
 * store's own (lexicographic) listing order is the chronological order; the
 * random suffix keeps two operators acting in the same millisecond apart.
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { z } from 'zod';
import { BundleStoreError, type BundleStore } from './bundle-store.js';
import { describeS3Error, httpStatusOf } from './s3-client.js';

export const HISTORY_DIR = 'history/';
export const HISTORY_ACTIONS = [
  'activate',
  'rollback',
  'shadow',
  'shadow-clear',
  'lockdown-on',
  'lockdown-off',
  'mode',
] as const;
export type HistoryAction = (typeof HISTORY_ACTIONS)[number];

/** A history record is a few hundred bytes; anything far larger is not ours. */
const MAX_RECORD_BYTES = 64 * 1024;
export const DEFAULT_HISTORY_LIMIT = 20;

const recordSchema = z.looseObject({
  action: z.enum(HISTORY_ACTIONS),
  bundle: z.string(),
  from: z.string().nullable(),
  to: z.string().nullable(),
  who: z.string(),
  why: z.string().nullable(),
  at: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

export type HistoryRecord = z.infer<typeof recordSchema>;

export interface HistoryEntry {
  key: string;
  record?: HistoryRecord;
  /** Set when the object is not a readable record (shown, not hidden). */
  problem?: string;
}

/** Who is acting: --actor, else the login name, else $USER. */
export function actorName(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit?.trim()) return explicit.trim();
  if (env.USER) return env.USER;
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

/** 2026-11-28T09:23:57.123Z → 20261128T092357.123Z: fixed width, sortable, no ":" in keys. */
export function historyTimestamp(at: Date): string {
  return at.toISOString().replace(/[-:]/g, '');
}

export function historyPrefix(store: BundleStore): string {
  return `${store.root}${HISTORY_DIR}`;
}

export interface HistoryInput {
  action: HistoryAction;
  from: string | null;
  to: string | null;
  who: string;
  why: string | null;
  at?: string;
  details?: Record<string, unknown>;
}

/** Write one record; returns its key. */
export async function recordHistory(store: BundleStore, record: HistoryInput): Promise<string> {
  const at = record.at ?? new Date().toISOString();
  const full: HistoryRecord = { ...record, bundle: store.location.bundle, at };
  const key = `${historyPrefix(store)}${historyTimestamp(new Date(at))}-${randomBytes(3).toString('hex')}.json`;
  try {
    await store.s3.send(
      new PutObjectCommand({
        Bucket: store.location.bucket,
        Key: key,
        Body: JSON.stringify(full, null, 2) + '\n',
        ContentType: 'application/json',
      }),
    );
  } catch (err) {
    throw new BundleStoreError(`PUT ${store.url(key)}: ${describeS3Error(err)}`, httpStatusOf(err));
  }
  return key;
}

/** The newest `limit` records, newest first. */
export async function readHistory(store: BundleStore, limit: number = DEFAULT_HISTORY_LIMIT): Promise<HistoryEntry[]> {
  const prefix = historyPrefix(store);
  const keys: string[] = [];
  let token: string | undefined;
  do {
    let out;
    try {
      out = await store.s3.send(
        new ListObjectsV2Command({ Bucket: store.location.bucket, Prefix: prefix, ContinuationToken: token }),
      );
    } catch (err) {
      throw new BundleStoreError(`LIST ${store.url(prefix)}: ${describeS3Error(err)}`, httpStatusOf(err));
    }
    for (const o of out.Contents ?? []) if (o.Key?.endsWith('.json')) keys.push(o.Key);
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  const newest = keys.sort().reverse().slice(0, Math.max(0, limit));
  return Promise.all(newest.map((key) => readRecord(store, key)));
}

async function readRecord(store: BundleStore, key: string): Promise<HistoryEntry> {
  let text: string;
  try {
    const out = await store.s3.send(new GetObjectCommand({ Bucket: store.location.bucket, Key: key }));
    if ((out.ContentLength ?? 0) > MAX_RECORD_BYTES) return { key, problem: `larger than ${MAX_RECORD_BYTES} bytes` };
    text = (await out.Body?.transformToString('utf8')) ?? '';
  } catch (err) {
    throw new BundleStoreError(`GET ${store.url(key)}: ${describeS3Error(err)}`, httpStatusOf(err));
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { key, problem: `not JSON: ${(err as Error).message}` };
  }
  const parsed = recordSchema.safeParse(raw);
  if (!parsed.success)
    return {
      key,
      problem: `not a history record: ${parsed.error.issues[0].path.join('.')}: ${parsed.error.issues[0].message}`,
    };
  return { key, record: parsed.data };
}
