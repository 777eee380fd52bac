/**
 * Server side of `authz bundle shadow V`: after each poll of the pointer, make
 * the shadow set match the pointer's `shadow` field. A named version is
 * downloaded and checked like an active one (sha256 from the pointer,
 * signature under --verify-key, manifest, Cedar) and compiled into its own
 * ActivePolicySet, which the Check handler evaluates beside the active set
 * but never enforces. A missing field clears it.
 *
 * A failure never touches the active set; a broken shadow version simply is
 * not compared. What could pass on another try (the store unreachable, a
 * download cut, the compile worker failing) is retried on the next poll;
 * what the same bytes would fail again (sha256, signature, manifest, Cedar's
 * refusal) is not, until the pointer names another shadow version: each try
 * starts a compile worker process.
 */
import type { Logger } from 'pino';
import { CompileWorkerFailure } from '../../cedar/policy-set-error.js';
import type { ActivePolicySet } from '../active-policy-set.js';
import { DEFAULT_ARCHIVE_LIMITS } from '../format/bundle-archive.js';
import { openBundle } from '../format/open-bundle.js';
import { filesToPolicySetSource } from '../format/bundle-files.js';
import type { BundlePointer, BundleStore } from '../store/bundle-store.js';
import { sha256 } from '../format/manifest.js';
import { signatureProblem, type VerifyKeys } from '../format/signature.js';
import type { AuthzMetrics } from '../../observability/metrics.js';
import { shadowOf, type ShadowField } from '../store/shadow-field.js';

export interface ShadowVersionLoaderOptions {
  store: BundleStore;
  shadowVersion: ActivePolicySet;
  logger: Logger;
  metrics: AuthzMetrics;
  verifyKey?: VerifyKeys;
  signedNotBefore?: Date;
}

export class ShadowVersionLoader {
  private loaded: ShadowField | undefined;
  /** The shadow that last failed to load, so a broken one is logged once, not every poll. */
  private failed: { key: string; message: string; final: boolean } | undefined;
  private inflight: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly o: ShadowVersionLoaderOptions) {}

  /**
   * Called after every poll with the pointer as now known (null: there is
   * none; undefined: unknown, e.g. the store was unreachable). Never throws;
   * the work runs in the background, one load at a time; the promise returned
   * settles when what this call started (if anything) is done.
   */
  onPolled(pointer: BundlePointer | null | undefined): Promise<void> {
    if (pointer === undefined || this.inflight || this.stopped) return Promise.resolve();
    const wanted = pointer ? shadowOf(pointer) : undefined;
    if (!wanted) {
      if (this.loaded) this.clear();
      // Named again later, a refused version is tried again.
      this.failed = undefined;
      return Promise.resolve();
    }
    if (this.loaded && this.loaded.version === wanted.version && this.loaded.sha256 === wanted.sha256)
      return Promise.resolve();
    if (this.failed?.final && this.failed.key === keyOf(wanted)) return Promise.resolve();
    this.inflight = this.load(wanted)
      .catch((err: Error) => this.fail(wanted, err.message, false))
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.inflight;
  }

  describe(): Record<string, unknown> {
    return {
      version: this.loaded?.version ?? null,
      set_at: this.loaded?.set_at ?? null,
      last_error: this.failed?.message ?? null,
    };
  }

  private clear(): void {
    this.o.logger.info({ version: this.loaded?.version }, 'shadow version cleared');
    this.loaded = undefined;
    this.failed = undefined;
    this.o.shadowVersion.clear();
    this.o.metrics.shadowVersionInfo.reset();
  }

  private async load(wanted: ShadowField): Promise<void> {
    const { store, verifyKey } = this.o;
    const { tarball } = await store.getVersion(wanted.version, { maxBytes: DEFAULT_ARCHIVE_LIMITS.maxArchiveBytes });
    const actual = sha256(tarball);
    if (actual !== wanted.sha256)
      return this.fail(wanted, `sha256 mismatch: the pointer says ${wanted.sha256}, the tarball is ${actual}`);
    if (verifyKey) {
      const sig = await store.getSignature(wanted.version);
      const expected = { bundle: store.location.bundle, version: wanted.version, sha256: actual };
      const problem = sig
        ? signatureProblem(verifyKey, expected, sig, { signedNotBefore: this.o.signedNotBefore })
        : 'it is not signed';
      if (problem) return this.fail(wanted, `refused by --verify-key: ${problem}`);
    }
    const opened = await openBundle(tarball);
    if (opened.manifest.version !== wanted.version)
      return this.fail(wanted, `its manifest says version ${opened.manifest.version}`);
    if (opened.manifest.name !== store.location.bundle)
      return this.fail(wanted, `its manifest says bundle "${opened.manifest.name}", not "${store.location.bundle}"`);
    if (this.stopped) return;
    const result = await this.o.shadowVersion.activate(filesToPolicySetSource(opened.files, wanted.version));
    if (!result.ok) return this.fail(wanted, result.error.message, !(result.error instanceof CompileWorkerFailure));
    this.loaded = wanted;
    this.failed = undefined;
    this.o.metrics.shadowVersionInfo.reset();
    this.o.metrics.shadowVersionInfo.set({ version: wanted.version }, 1);
    this.o.logger.info(
      { version: wanted.version, policies: result.set.policySet.policies.size },
      'shadow version loaded; evaluated beside the active set, never enforced',
    );
  }

  /** `final`: the same bytes would fail again, so this shadow version is not tried again until the pointer moves. */
  private fail(wanted: ShadowField, message: string, final = true): void {
    // Comparing with an older shadow than the one named would mislead whoever reads the mismatches.
    if (this.loaded) {
      this.loaded = undefined;
      this.o.shadowVersion.clear();
      this.o.metrics.shadowVersionInfo.reset();
    }
    const key = keyOf(wanted);
    if (this.failed?.key !== key || this.failed.message !== message) {
      this.o.logger.warn(
        { version: wanted.version, error: message },
        final
          ? 'shadow version refused; not tried again until the pointer names another shadow version'
          : 'shadow version not loaded; will retry on the next poll',
      );
    }
    this.failed = { key, message, final };
  }
}

function keyOf(s: ShadowField): string {
  return `${s.version}:${s.sha256}`;
}
