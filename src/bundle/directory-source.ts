/**
 * The policy directory as a BundleSource: read at start, then polled
 * (PolicyDirectoryWatcher); each change is compiled and swapped in.
 */
import type { ActivePolicySet } from './active-policy-set.js';
import { filesToPolicySetSource, type BundleFileMap } from './bundle-files.js';
import type { BundleSource } from './bundle-source.js';
import { directoryVersion, PolicyDirectoryWatcher } from './policy-directory.js';

export class DirectoryBundleSource implements BundleSource {
  readonly kind = 'directory';
  private readonly watcher: PolicyDirectoryWatcher;

  constructor(private readonly dir: string, private readonly policySet: ActivePolicySet) {
    this.watcher = new PolicyDirectoryWatcher(dir, (files) => this.load(files));
  }

  async start(): Promise<void> {
    await this.load(await this.watcher.start());
  }

  async stop(): Promise<void> {
    this.watcher.stop();
  }

  describe(): Record<string, unknown> {
    return { source: { kind: this.kind, path: this.dir } };
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
