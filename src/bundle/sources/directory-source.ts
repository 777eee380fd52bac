/**
 * The policy directory as a BundleSource: read at start, then watched
 * (PolicyDirectoryWatcher: events, a cheap check and a slow full poll); each
 * change that reads as a snapshot (see format/policy-directory.ts) is compiled
 * and swapped in.
 */
import { CompileWorkerFailure } from '../../cedar/policy-set-error.js';
import type { ActivePolicySet } from '../active-policy-set.js';
import { filesToPolicySetSource, type BundleFileMap } from '../format/bundle-files.js';
import type { BundleSource } from './bundle-source.js';
import { DEFAULT_DIRECTORY_SETTLE_MS, directoryVersion } from '../format/policy-directory.js';
import { PolicyDirectoryWatcher } from './policy-directory-watcher.js';

/** Compiles of one snapshot tried when the compile worker (not Cedar) fails, and the first wait before trying again (doubling). */
export const DIRECTORY_WORKER_ATTEMPTS = 3;
export const DIRECTORY_WORKER_RETRY_MS = 1000;

export class DirectoryBundleSource implements BundleSource {
  readonly kind = 'directory';
  private readonly watcher: PolicyDirectoryWatcher;
  /** A snapshot to compile again after a compile worker failure; cleared by any newer read. */
  private retry: NodeJS.Timeout | undefined;
  /** Reads handed to load, so a failed compile retries only if nothing newer was read meanwhile. */
  private reads = 0;

  constructor(
    private readonly dir: string,
    private readonly policySet: ActivePolicySet,
    private readonly settleMs: number = DEFAULT_DIRECTORY_SETTLE_MS,
  ) {
    this.watcher = new PolicyDirectoryWatcher(dir, (files) => this.load(files), { settleMs });
  }

  async start(): Promise<void> {
    await this.load(await this.watcher.start());
  }

  async stop(): Promise<void> {
    clearTimeout(this.retry);
    this.watcher.stop();
  }

  describe(): Record<string, unknown> {
    return {
      source: {
        kind: this.kind,
        path: this.dir,
        settle_ms: this.settleMs,
        changing_reads: this.watcher.changingReads,
        watch: this.watcher.mode,
      },
    };
  }

  private async load(files: BundleFileMap | Error, attempt = 1): Promise<void> {
    clearTimeout(this.retry);
    const read = ++this.reads;
    if (files instanceof Error) {
      this.policySet.refuse(files);
      return;
    }
    let source;
    try {
      source = filesToPolicySetSource(files, directoryVersion(files));
    } catch (err) {
      this.policySet.refuse(err as Error);
      return;
    }
    if (source.version === this.policySet.current?.version) return;
    // Compiled in small steps: requests keep being answered by the current set meanwhile.
    const result = await this.policySet.activate(source);
    // The worker failed, not the policies: the directory will not change to tell us to try again.
    const workerFailed = !result.ok && result.error instanceof CompileWorkerFailure;
    if (workerFailed && read === this.reads && attempt < DIRECTORY_WORKER_ATTEMPTS) {
      this.retry = setTimeout(() => void this.load(files, attempt + 1), DIRECTORY_WORKER_RETRY_MS * 2 ** (attempt - 1));
      this.retry.unref();
    }
  }
}
