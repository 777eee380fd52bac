/**
 * The policy directory as a BundleSource: read at start, then watched
 * (PolicyDirectoryWatcher: events, a cheap check and a slow full poll); each
 * change that reads as a snapshot (see format/policy-directory.ts) is compiled
 * and swapped in.
 */
import type { ActivePolicySet } from '../active-policy-set.js';
import { filesToPolicySetSource, type BundleFileMap } from '../format/bundle-files.js';
import type { BundleSource } from './bundle-source.js';
import { DEFAULT_DIRECTORY_SETTLE_MS, directoryVersion } from '../format/policy-directory.js';
import { PolicyDirectoryWatcher } from './policy-directory-watcher.js';

export class DirectoryBundleSource implements BundleSource {
  readonly kind = 'directory';
  private readonly watcher: PolicyDirectoryWatcher;

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

  private async load(files: BundleFileMap | Error): Promise<void> {
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
    await this.policySet.activate(source);
  }
}
