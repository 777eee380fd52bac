/**
 * Server side of `authz bundle shadow V`: after each poll of the pointer, make
 * the shadow set match the pointer's `shadow` field. A named version is
 * downloaded and checked like an active one (sha256 from the pointer,
 * signature under --verify-key, manifest, Cedar) and compiled into its own
 * ActivePolicySet, which the Check handler evaluates beside the active set
 * but never enforces. A missing field clears it.
 *
 * Failures are logged and retried on the next poll; they never touch the
 * active set, and a broken shadow version simply is not compared.
 */
import type { Logger } from 'pino';
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
  private failed: { key: string; message: string } | undefined;
  private inflight: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly o: ShadowVersionLoaderOptions) {}

  /**
   * Called after every poll with the pointer as now known (null: there is
   * none; undefined: unknown, e.g. the store was unreachable). Never throws;
   * the work runs in the background, one load at a time.
   */
  onPolled(pointer: BundlePointer | null | undefined): void {
    if (pointer === undefined || this.inflight || this.stopped) return;
    const wanted = pointer ? shadowOf(pointer) : undefined;
    if (!wanted) {
      if (this.loaded) this.clear();
      return;
    }
    if (this.loaded && this.loaded.version === wanted.version && this.loaded.sha256 === wanted.sha256) return;
    this.inflight = this.load(wanted)
      .catch((err: Error) => this.fail(wanted, err.message))
      .finally(() => {
        this.inflight = undefined;
      });
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
    if (!result.ok) return this.fail(wanted, result.error.message);
    this.loaded = wanted;
    this.failed = undefined;
    this.o.metrics.shadowVersionInfo.reset();
    this.o.metrics.shadowVersionInfo.set({ version: wanted.version }, 1);
    this.o.logger.info(
      { version: wanted.version, policies: result.set.policySet.policies.size },
      'shadow version loaded; evaluated beside the active set, never enforced',
    );
  }

  private fail(wanted: ShadowField, message: string): void {
    // Comparing with an older shadow than the one named would mislead whoever reads the mismatches.
    if (this.loaded) {
      this.loaded = undefined;
      this.o.shadowVersion.clear();
      this.o.metrics.shadowVersionInfo.reset();
    }
    const key = `${wanted.version}:${wanted.sha256}`;
    if (this.failed?.key !== key || this.failed.message !== message) {
      this.o.logger.warn(
        { version: wanted.version, error: message },
        'shadow version not loaded; will retry on the next poll',
      );
    }
    this.failed = { key, message };
  }
}
