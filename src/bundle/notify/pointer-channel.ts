/**
 * The pointer over NATS: after a command writes `current.json` to the store,
 * it puts the same pointer under this bundle's key in a JetStream key-value
 * bucket; every server watches that key. A KV watch delivers the current value
 * when it starts, so a server that connects (or reconnects) after a change
 * still hears of it: that is the replay.
 *
 * A message is only a hint. Servers answer it by reading the pointer from the
 * store (the same conditional GET a poll makes) and loading what the store
 * names, verified by its sha256 (and signature). So a duplicate, late,
 * out-of-order or forged message can cost a store read, never a wrong version.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { KV, KvEntry, NatsConnection, QueuedIterator } from 'nats';
import type { Logger } from 'pino';
import { pointerSchema, type BundlePointer, type StoreLocation } from '../store/bundle-store.js';
import { connectOnce, describeServers, openBucket, type NotifySettings } from './notify-connection.js';

export const POINTER_BUCKET = 'authz_pointers';
/** A watch that fails (bucket gone with a restarted NATS, say) is set up again after this. */
export const WATCH_RETRY_MS = 1_000;

/**
 * One key per store location. Bucket, prefix and bundle may hold characters
 * NATS keys cannot, so the key is a hash; the message carries the location
 * in readable form, and servers check it.
 */
export function pointerKey(location: StoreLocation): string {
  return `bundle_${locationId(location)}`;
}

export function locationId(location: StoreLocation): string {
  return createHash('sha256')
    .update(`${location.bucket}\n${location.prefix}\n${location.bundle}`)
    .digest('hex')
    .slice(0, 24);
}

export function locationUrl(location: StoreLocation): string {
  return `s3://${location.bucket}/${location.prefix}${location.bundle}`;
}

export const pointerMessageSchema = z.object({
  store: z.string(),
  pointer: pointerSchema,
  published_at: z.string(),
});

export type PointerMessage = z.infer<typeof pointerMessageSchema>;

/** Put the pointer on the channel. Throws on any failure (the caller reports it; the store already has the change). */
export async function publishPointer(
  settings: NotifySettings,
  location: StoreLocation,
  pointer: BundlePointer,
): Promise<void> {
  const nc = await connectOnce(settings, 'authz-cli');
  try {
    const kv = await openBucket(nc, POINTER_BUCKET);
    const message: PointerMessage = { store: locationUrl(location), pointer, published_at: new Date().toISOString() };
    await kv.put(pointerKey(location), JSON.stringify(message));
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/** What a server makes of one entry on its key. */
export type Hint =
  | { kind: 'pointer'; pointer: BundlePointer }
  | { kind: 'invalid'; problem: string }
  | { kind: 'deleted' };

export function readHint(entry: Pick<KvEntry, 'operation' | 'value'>, location: StoreLocation): Hint {
  if (entry.operation !== 'PUT') return { kind: 'deleted' };
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(entry.value).toString('utf8'));
  } catch {
    return { kind: 'invalid', problem: 'not JSON' };
  }
  const parsed = pointerMessageSchema.safeParse(raw);
  if (!parsed.success)
    return {
      kind: 'invalid',
      problem: `${parsed.error.issues[0].path.join('.') || '(root)'}: ${parsed.error.issues[0].message}`,
    };
  if (parsed.data.store !== locationUrl(location))
    return { kind: 'invalid', problem: `names another store (${parsed.data.store})` };
  return { kind: 'pointer', pointer: parsed.data.pointer };
}

export interface PointerWatchOptions {
  location: StoreLocation;
  logger: Logger;
  settings: NotifySettings;
  /** Called for every hint, and with undefined when the watch (re)starts: re-read the store either way. */
  onHint: (pointer: BundlePointer | undefined) => void;
  /** Counts each message (authz_push_messages_total). */
  count?: (result: 'hint' | 'invalid') => void;
}

/**
 * The server's watch on its key. Call `watch(nc)` on every (re)connect: the
 * old watch is dropped and a new one delivers the current value.
 */
export class PointerWatch {
  messages = 0;
  invalidMessages = 0;
  lastMessageAt: Date | undefined;
  lastProblem: string | undefined;
  private iterator: QueuedIterator<KvEntry> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private generation = 0;

  constructor(private readonly o: PointerWatchOptions) {}

  watch(nc: NatsConnection): void {
    if (this.stopped) return;
    const generation = ++this.generation;
    this.iterator?.stop();
    this.iterator = undefined;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    void this.run(nc, generation);
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.iterator?.stop();
  }

  private async run(nc: NatsConnection, generation: number): Promise<void> {
    const { logger, location } = this.o;
    try {
      const kv: KV = await openBucket(nc, POINTER_BUCKET);
      if (generation !== this.generation) return;
      // Connected: whatever was missed while away, the store says it now.
      this.o.onHint(undefined);
      const it = await kv.watch({ key: pointerKey(location) });
      if (generation !== this.generation) {
        it.stop();
        return;
      }
      this.iterator = it;
      for await (const entry of it) {
        if (generation !== this.generation) break;
        this.lastMessageAt = new Date();
        const hint = readHint(entry, location);
        if (hint.kind === 'invalid') {
          this.invalidMessages++;
          this.o.count?.('invalid');
          this.lastProblem = hint.problem;
          logger.warn(
            { key: entry.key, problem: hint.problem },
            'unusable pointer message on NATS; re-reading the store',
          );
          this.o.onHint(undefined);
        } else if (hint.kind === 'pointer') {
          this.messages++;
          this.o.count?.('hint');
          this.o.onHint(hint.pointer);
        }
      }
    } catch (err) {
      if (generation !== this.generation || this.stopped || nc.isClosed()) return;
      this.lastProblem = (err as Error).message;
      logger.warn(
        { nats: describeServers(this.o.settings), error: this.lastProblem },
        'NATS pointer watch failed; polling meanwhile, retrying',
      );
      this.retryTimer = setTimeout(() => {
        if (generation === this.generation && !nc.isClosed()) this.watch(nc);
      }, WATCH_RETRY_MS);
      this.retryTimer.unref();
    }
  }
}
