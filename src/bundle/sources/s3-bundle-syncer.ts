/**
 * The server side of the S3 store: poll the pointer, and when it names a new
 * version, download, verify, unpack, compile and swap it in.
 *
 * Each poll is one conditional GET of current.json (If-None-Match on the last
 * ETag), so an unchanged pointer costs a 304 and no body. Anything wrong with
 * a bundle (hash, signature, archive, manifest, Cedar) is refused through
 * ActivePolicySet.refuse, which counts and logs it, and the active set keeps
 * serving. A store that cannot be reached is not a bundle problem: it is
 * counted in authz_bundle_store_errors_total and polled with backoff.
 */
import type { Logger } from 'pino';
import type { AuthzMetrics } from '../../observability/metrics.js';
import { CompileWorkerFailure } from '../../cedar/policy-set-error.js';
import type { ActivePolicySet } from '../active-policy-set.js';
import { DEFAULT_ARCHIVE_LIMITS, type ArchiveLimits } from '../format/bundle-archive.js';
import { openBundle } from '../format/open-bundle.js';
import { filesToPolicySetSource } from '../format/bundle-files.js';
import type { BundleSource } from './bundle-source.js';
import { BundleStoreError, type BundlePointer, type BundleStore } from '../store/bundle-store.js';
import type { LastGoodStore } from './last-good.js';
import { sha256, type BundleManifest } from '../format/manifest.js';
import { signatureProblem, type VerifyKeys } from '../format/signature.js';

/**
 * Polls are spread over [0.8, 1.0] x interval: a fleet started together
 * drifts apart instead of hitting the store in step, and a change still
 * reaches every server within one interval (plus download and compile).
 */
export const POLL_JITTER_FRACTION = 0.2;
/** Compiles of one bundle tried before a compile worker failure counts as a refusal (see retryAfterWorkerFailure). */
export const COMPILE_WORKER_ATTEMPTS = 3;

/** During an outage the wait doubles per failed poll, up to this many intervals... */
export const MAX_BACKOFF_INTERVALS = 8;
/** ...and never more than this. */
export const MAX_BACKOFF_MS = 5 * 60_000;

/**
 * Milliseconds until the next poll, after `retries` consecutive polls that
 * ended in a retry (0 when the last one went fine); `random` in [0, 1).
 */
export function pollDelayMs(intervalMs: number, retries: number, random: number): number {
  const base =
    retries > 0
      ? Math.min(
          intervalMs * 2 ** (retries - 1),
          intervalMs * MAX_BACKOFF_INTERVALS,
          Math.max(MAX_BACKOFF_MS, intervalMs),
        )
      : intervalMs;
  return base * (1 - POLL_JITTER_FRACTION * random);
}

export interface S3BundleSyncerOptions {
  store: BundleStore;
  policySet: ActivePolicySet;
  metrics: AuthzMetrics;
  logger: Logger;
  pollIntervalMs: number;
  /**
   * When set, bundles without a signature by one of these Ed25519 keys for
   * this bundle name, the pointer's version and the downloaded hash are refused.
   */
  verifyKey?: VerifyKeys;
  /** Rollback floor: signatures made before this time are refused. */
  signedNotBefore?: Date;
  lastGood?: LastGoodStore;
  limits?: ArchiveLimits;
  /** Extra facts about the source for /bundle (endpoint, state dir...). */
  details?: Record<string, unknown>;
  /** Injectable for tests of the schedule; Math.random otherwise. */
  random?: () => number;
  /**
   * Called after every poll with the pointer as now known (null: none;
   * undefined: unknown). The shadow version loader follows the pointer's
   * `shadow` field through it, without a poll of its own.
   */
  onPolled?: (pointer: BundlePointer | null | undefined) => void;
}

/** The version this syncer loaded and serves, and where it came from. */
interface ServedVersion {
  version: string;
  sha256: string;
  manifest: BundleManifest;
  pointer: BundlePointer;
  loadedFrom: 'store' | 'last-good';
  loadedAt: Date;
}

/** A tarball downloaded on a push message's word, while the pointer was read. */
interface Prefetched {
  tarball: Buffer;
  ms: number;
}

/** 'done': the pointer's target was handled (activated or refused for good); 'retry': try again after a backoff. */
type Outcome = 'done' | 'retry';

export class S3BundleSyncer implements BundleSource {
  readonly kind = 's3';
  private etag: string | undefined;
  private active: ServedVersion | undefined;
  private pointerState: {
    status: 'unknown' | 'found' | 'missing' | 'invalid';
    pointer?: BundlePointer;
    etag?: string;
    problem?: string;
  } = {
    status: 'unknown',
  };
  /** Consecutive polls that could not reach the store (for /bundle and the logs). */
  private failures = 0;
  /** Consecutive polls that ended in 'retry' (store down, or a download failing); drives the backoff. */
  private retries = 0;
  private lastSyncAt: Date | undefined;
  /**
   * When the store last confirmed that what we run is what its pointer names
   * (or, after a start from the state dir, when that bundle was saved): what
   * the stale-policy guard measures against.
   */
  lastConfirmedAt: Date | undefined;
  /** A nudge came while a sync was running: run one more right after it. */
  private nudged = false;
  private started = false;
  /** Syncs started by a nudge (push hint, NATS reconnect), for /bundle. */
  private nudges = 0;
  /** The pointer the latest push message named, if not yet acted on (see syncPointer). */
  private hint: BundlePointer | undefined;
  /** Compile worker failures on one bundle in a row (see retryAfterWorkerFailure). */
  private workerFailures: { sha256: string; count: number } | undefined;
  private lastStoreError: { message: string; at: Date } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private abort: AbortController | undefined;
  private stopped = false;
  private readonly limits: ArchiveLimits;
  private readonly random: () => number;

  constructor(private readonly o: S3BundleSyncerOptions) {
    this.limits = o.limits ?? DEFAULT_ARCHIVE_LIMITS;
    this.random = o.random ?? Math.random;
  }

  async start(): Promise<void> {
    const outcome = await this.syncOnce();
    if (!this.o.policySet.current) await this.loadLastGood();
    this.started = true;
    this.afterSync(outcome);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.abort?.abort();
    while (this.inflight) await this.inflight;
  }

  /**
   * Read the pointer now instead of at the next poll: a push message arrived
   * (it is only a hint: the store's pointer decides, through the same path a
   * poll takes) or NATS (re)connected. Nudges coalesce: one sync at a time,
   * and at most one more right after it, however many messages came meanwhile.
   */
  nudge(hint?: BundlePointer): void {
    if (this.stopped) return;
    if (hint) this.hint = hint;
    if (this.inflight || !this.started) {
      this.nudged = true;
      return;
    }
    this.nudges++;
    this.runNow();
  }

  describe(): Record<string, unknown> {
    const { store } = this.o;
    const a = this.active;
    return {
      source: {
        kind: this.kind,
        bucket: store.location.bucket,
        prefix: store.location.prefix,
        bundle: store.location.bundle,
        pointer_key: store.pointerKey(),
        poll_interval_ms: this.o.pollIntervalMs,
        nudged_syncs: this.nudges,
        verify_signatures: this.o.verifyKey !== undefined,
        ...(this.o.signedNotBefore ? { signed_not_before: this.o.signedNotBefore.toISOString() } : {}),
        ...this.o.details,
      },
      bundle: a
        ? {
            version: a.version,
            sha256: a.sha256,
            loaded_from: a.loadedFrom,
            loaded_at: a.loadedAt.toISOString(),
            manifest: a.manifest,
          }
        : null,
      pointer: this.pointerState,
      store: {
        reachable: this.lastSyncAt !== undefined && this.failures === 0,
        last_sync_at: this.lastSyncAt?.toISOString() ?? null,
        confirmed_at: this.lastConfirmedAt?.toISOString() ?? null,
        consecutive_failures: this.failures,
        last_error: this.lastStoreError
          ? { message: this.lastStoreError.message, at: this.lastStoreError.at.toISOString() }
          : null,
      },
    };
  }

  /** One poll: read the pointer and, when it names something new, load it. Never throws. */
  async syncOnce(): Promise<Outcome> {
    const outcome = await this.syncPointer();
    if (outcome === 'done' && this.failures === 0 && !this.stopped) this.lastConfirmedAt = new Date();
    if (this.o.onPolled && !this.stopped) {
      const state = this.pointerState;
      this.o.onPolled(
        this.failures > 0
          ? undefined
          : state.status === 'found'
            ? state.pointer
            : state.status === 'missing'
              ? null
              : undefined,
      );
    }
    return outcome;
  }

  private async syncPointer(): Promise<Outcome> {
    this.abort = new AbortController();
    const signal = this.abort.signal;
    const { store, logger } = this.o;
    const prefetch = this.prefetchHinted(signal);
    let read;
    try {
      read = await store.getPointer({ ifNoneMatch: this.etag, signal });
    } catch (err) {
      if (this.stopped) return 'done';
      this.storeFailed(err as Error);
      return 'retry';
    }
    this.storeReached();
    switch (read.kind) {
      case 'not-modified':
        return 'done';
      case 'missing':
        if (this.pointerState.status !== 'missing') {
          logger.warn(
            { pointer: store.url(store.pointerKey()), version: this.o.policySet.current?.version ?? null },
            'bundle pointer not found; the active set keeps serving',
          );
        }
        this.etag = undefined;
        this.pointerState = { status: 'missing' };
        return 'done';
      case 'invalid':
        this.etag = read.etag;
        this.pointerState = { status: 'invalid', etag: read.etag, problem: read.error.message };
        this.o.policySet.refuse(read.error);
        return 'done';
      case 'found': {
        const pointer = read.pointer;
        this.pointerState = { status: 'found', pointer, etag: read.etag };
        const a = this.active;
        if (a && a.version === pointer.version && a.sha256 === pointer.sha256) {
          // Same bundle (a restart found its last good version still active, or the pointer was rewritten as it was).
          this.etag = read.etag;
          a.pointer = pointer;
          return 'done';
        }
        const prefetched =
          prefetch && prefetch.version === pointer.version && prefetch.sha256 === pointer.sha256
            ? prefetch.tarball
            : undefined;
        const outcome = await this.loadFromStore(pointer, signal, prefetched);
        // A transient failure leaves the ETag unset so the next poll tries the same pointer again.
        if (outcome === 'done') this.etag = read.etag;
        return outcome;
      }
    }
  }

  /**
   * A push message named a bundle we do not run: download it while the
   * pointer is read, saving one store round trip. Only used when the store's
   * pointer names the same version and sha256, and the bytes are checked
   * against the store's pointer like any download; otherwise dropped.
   */
  private prefetchHinted(
    signal: AbortSignal,
  ): { version: string; sha256: string; tarball: Promise<Prefetched | undefined> } | undefined {
    const hint = this.hint;
    this.hint = undefined;
    const a = this.active;
    if (!hint || (a && a.version === hint.version && a.sha256 === hint.sha256)) return undefined;
    const started = performance.now();
    const tarball = this.o.store.getVersion(hint.version, { maxBytes: this.limits.maxArchiveBytes, signal }).then(
      (r) => ({ tarball: r.tarball, ms: performance.now() - started }),
      () => undefined,
    );
    return { version: hint.version, sha256: hint.sha256, tarball };
  }

  private async loadFromStore(
    pointer: BundlePointer,
    signal: AbortSignal,
    prefetch?: Promise<Prefetched | undefined>,
  ): Promise<Outcome> {
    const { store, metrics, verifyKey, lastGood } = this.o;
    const v = pointer.version;
    const started = performance.now();
    let tarball: Buffer;
    let signature: Buffer | undefined;
    const cached = await lastGood?.loadIfHash(pointer.sha256);
    const prefetched = cached ? undefined : await prefetch;
    try {
      tarball =
        cached?.tarball ??
        prefetched?.tarball ??
        (await store.getVersion(v, { maxBytes: this.limits.maxArchiveBytes, signal })).tarball;
      if (verifyKey) signature = await store.getSignature(v, { signal });
    } catch (err) {
      if (this.stopped) return 'done';
      const notThere = err instanceof BundleStoreError && err.status === 404;
      this.refuse(`bundle ${v}: download failed: ${(err as Error).message}`, v);
      return notThere ? 'done' : 'retry';
    }
    if (!cached) metrics.bundleDownloadDuration.observe((prefetched?.ms ?? performance.now() - started) / 1000);

    const actual = sha256(tarball);
    if (actual !== pointer.sha256) {
      return this.refuse(
        `bundle ${v}: sha256 mismatch: the pointer says ${pointer.sha256}, the tarball is ${actual}`,
        v,
      );
    }
    if (verifyKey) {
      const problem = signature
        ? signatureProblem(verifyKey, { bundle: store.location.bundle, version: v, sha256: actual }, signature, {
            signedNotBefore: this.o.signedNotBefore,
          })
        : `no signature at ${store.url(store.signatureKey(v))}`;
      if (problem) return this.refuse(`bundle ${v}: refused by --verify-key: ${problem}`, v);
    }
    const activated = await this.activate(tarball, pointer, 'store');
    if (activated !== 'activated')
      return activated === 'worker-failed' ? this.retryAfterWorkerFailure(pointer) : 'done';
    if (lastGood && !cached) {
      await lastGood.save(tarball, pointer, signature).catch((err: Error) => {
        this.o.logger.warn(
          { dir: lastGood.dir, error: err.message },
          'could not persist the last good bundle; serving it anyway',
        );
      });
    }
    return 'done';
  }

  /** At start, when the store gave us nothing to serve: the bundle persisted by an earlier run. */
  private async loadLastGood(): Promise<void> {
    const { lastGood, logger, verifyKey, store } = this.o;
    if (!lastGood) {
      logger.warn(
        'no policy set from the store and no --state-dir to fall back on; not serving until the store answers',
      );
      return;
    }
    let saved;
    try {
      saved = await lastGood.load();
    } catch (err) {
      logger.error({ dir: lastGood.dir, error: (err as Error).message }, 'the persisted last good bundle is unusable');
      return;
    }
    if (!saved) {
      logger.warn({ dir: lastGood.dir }, 'no last good bundle persisted yet; not serving until the store answers');
      return;
    }
    const { record, tarball } = saved;
    if (verifyKey) {
      const expected = { bundle: store.location.bundle, version: record.pointer.version, sha256: record.sha256 };
      const problem = record.signature
        ? signatureProblem(verifyKey, expected, Buffer.from(record.signature), {
            signedNotBefore: this.o.signedNotBefore,
          })
        : 'it was saved without a signature';
      if (problem) {
        this.refuse(`last good bundle ${record.version}: refused by --verify-key: ${problem}`, record.version);
        return;
      }
    }
    if ((await this.activate(tarball, record.pointer, 'last-good')) === 'activated') {
      // The store confirmed this version when it was saved; nothing since.
      this.lastConfirmedAt = new Date(record.saved_at);
      logger.warn(
        { version: record.version, saved_at: record.saved_at },
        'serving the last good bundle from the state dir until the store answers',
      );
    }
  }

  /**
   * The compile worker failed on this bundle (Cedar never judged it): try it
   * again, with the poll's backoff, up to COMPILE_WORKER_ATTEMPTS times in
   * all; after that it stays refused until the pointer names something else,
   * so a bundle that kills every worker does not start one per poll forever.
   */
  private retryAfterWorkerFailure(pointer: BundlePointer): Outcome {
    const same = this.workerFailures?.sha256 === pointer.sha256;
    const count = same ? this.workerFailures!.count + 1 : 1;
    this.workerFailures = { sha256: pointer.sha256, count };
    return count < COMPILE_WORKER_ATTEMPTS ? 'retry' : 'done';
  }

  /** Unpack, check the manifest, compile and swap. Anything but 'activated' was refused (already counted and logged). */
  private async activate(
    tarball: Buffer,
    pointer: BundlePointer,
    from: ServedVersion['loadedFrom'],
  ): Promise<'activated' | 'refused' | 'worker-failed'> {
    const v = pointer.version;
    let opened;
    try {
      opened = await openBundle(tarball, this.limits);
    } catch (err) {
      this.refuse(`bundle ${v}: ${(err as Error).message}`, v);
      return 'refused';
    }
    if (opened.manifest.version !== v) {
      this.refuse(
        `bundle ${v}: its manifest says version ${opened.manifest.version}; the tarball was built for another version`,
        v,
      );
      return 'refused';
    }
    if (opened.manifest.name !== this.o.store.location.bundle) {
      this.refuse(
        `bundle ${v}: its manifest says bundle "${opened.manifest.name}", but this server serves "${this.o.store.location.bundle}"`,
        v,
      );
      return 'refused';
    }
    let source;
    try {
      source = filesToPolicySetSource(opened.files, v);
    } catch (err) {
      this.refuse(`bundle ${v}: ${(err as Error).message}`, v);
      return 'refused';
    }
    if (this.stopped) return 'refused';
    // Compiled in small steps: requests keep being answered by the current set meanwhile.
    const result = await this.o.policySet.activate(source);
    if (!result.ok) return result.error instanceof CompileWorkerFailure ? 'worker-failed' : 'refused';
    this.active = {
      version: v,
      sha256: sha256(tarball),
      manifest: opened.manifest,
      pointer,
      loadedFrom: from,
      loadedAt: new Date(),
    };
    this.workerFailures = undefined;
    return 'activated';
  }

  private refuse(message: string, version: string): Outcome {
    this.o.policySet.refuse(new Error(message), version);
    return 'done';
  }

  private storeReached(): void {
    if (this.failures > 0) this.o.logger.info({ failed_polls: this.failures }, 'bundle store reachable again');
    this.failures = 0;
    this.lastSyncAt = new Date();
    this.o.metrics.bundleLastSync.set(this.lastSyncAt.getTime() / 1000);
  }

  private storeFailed(err: Error): void {
    this.failures++;
    this.o.metrics.bundleStoreErrors.inc();
    const repeated = this.lastStoreError?.message === err.message;
    this.lastStoreError = { message: err.message, at: new Date() };
    // One line when the store goes away (or fails differently), not one per poll.
    const level = repeated ? 'debug' : 'warn';
    this.o.logger[level](
      { error: err.message, failed_polls: this.failures, version: this.o.policySet.current?.version ?? null },
      'bundle store unreachable; the active set keeps serving',
    );
  }

  private runNow(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.inflight = this.syncOnce()
      .catch((err: Error): Outcome => {
        // syncOnce handles every expected failure; this is a bug, so say so and keep polling.
        this.o.logger.error({ err }, 'bundle sync failed unexpectedly');
        return 'retry';
      })
      .then((next) => {
        this.inflight = undefined;
        this.afterSync(next);
      });
  }

  /** Run again at once if nudged meanwhile; else wait for the next poll (with backoff after a retry). */
  private afterSync(outcome: Outcome): void {
    if (this.stopped) return;
    this.retries = outcome === 'retry' ? this.retries + 1 : 0;
    if (this.nudged) {
      this.nudged = false;
      this.nudges++;
      this.runNow();
      return;
    }
    this.timer = setTimeout(() => this.runNow(), pollDelayMs(this.o.pollIntervalMs, this.retries, this.random()));
    this.timer.unref();
  }
}
