/**
 * Where policy sets come from. Every source turns what it reads into a file
 * map, then a PolicySetSource (`filesToPolicySetSource`), and hands it to
 * ActivePolicySet, which compiles and swaps; so a directory and a store
 * bundle with the same files behave the same.
 */
export interface BundleSource {
  readonly kind: string;
  /**
   * Make the first attempt to load a set, then keep watching. Resolves once
   * the first attempt is over, whether or not a set is active by then.
   */
  start(): Promise<void>;
  /** Stop watching; waits for an in-flight load to finish or abort. */
  stop(): Promise<void>;
  /** What the admin `/bundle` page shows about this source (JSON). */
  describe(): Record<string, unknown>;
  /** When the source last confirmed the active version (the stale-policy guard's clock); sources that cannot go stale leave it out. */
  confirmedAt?(): Date | undefined;
}
