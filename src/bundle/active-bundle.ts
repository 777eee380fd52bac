/**
 * A bundle as the server answers with it: the engine's compiled policy set
 * (Cedar data only: policies, slices, entities, schema, annotations) beside
 * what bundle.yaml and lists/ add for the rest of the pipeline (mode,
 * enforcement, rate limits, IP lists, timezone). Assembled once per version,
 * immutable; requests read one `ActiveBundle` and use it to the end.
 */
import { compilePolicySetInChunks, type ChunkedCompileResult } from '../cedar/compile-async.js';
import { compilePolicySet, PolicySetError, type CompiledPolicySet, type CompileOptions } from '../cedar/compile.js';
import type { PolicyFile, PolicySetSource } from '../cedar/policy-set-source.js';
import { IpListError, IpListIndex } from '../context/ip-lists.js';
import { DEFAULT_TIMEZONE, isValidTimezone, LocalTimeZone } from '../context/time-fields.js';
import { DEFAULT_BUNDLE_SETTINGS, type BundleSettings, type RateLimitRule } from './bundle-settings.js';

/** What a bundle holds, read from a directory or unpacked from an archive: the engine's source plus bundle.yaml and lists/. */
export interface BundleContents extends PolicySetSource {
  /** Parsed bundle.yaml; defaults when absent. */
  settings?: BundleSettings;
  /** IP lists (lists/NAME.txt), name without directory and suffix. */
  lists?: PolicyFile[];
}

export interface ActiveBundle {
  readonly version: string;
  /** What the engine decides with (`decide(bundle.policySet, ...)`). */
  readonly policySet: CompiledPolicySet;
  /** bundle.yaml settings (mode, enforcement, timezone, rate limits, services, allow effects). */
  readonly settings: BundleSettings;
  /** IP lists for context.source.lists (empty when the bundle has none). */
  readonly ipLists: IpListIndex;
  /** Timezone of context.hour / context.weekday (UTC unless bundle.yaml names one). */
  readonly timeZone: LocalTimeZone;
  /** bundle.yaml `rateLimits` (the same array as `settings.rateLimits`). */
  readonly rateLimits: readonly RateLimitRule[];
}

export function compileIpLists(contents: BundleContents): IpListIndex {
  try {
    return IpListIndex.compile(contents.lists ?? []);
  } catch (err) {
    if (err instanceof IpListError) throw new PolicySetError(err.message);
    throw err;
  }
}

export function compileTimeZone(contents: BundleContents): LocalTimeZone {
  // bundle.yaml's schema already refused a bad zone; this guards contents built in code.
  const tz = contents.settings?.timezone ?? DEFAULT_TIMEZONE;
  if (!isValidTimezone(tz))
    throw new PolicySetError(
      `bundle.yaml: timezone "${tz}" is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)`,
    );
  return new LocalTimeZone(tz);
}

/**
 * The bundle around a compiled set. Lists and timezone are checked after the
 * policies (so a bundle with several mistakes names the policy one first, as
 * before); on a refusal the set is retired, freeing its preparsed slices.
 */
export function bundleOf(contents: BundleContents, policySet: CompiledPolicySet): ActiveBundle {
  let ipLists: IpListIndex;
  let timeZone: LocalTimeZone;
  try {
    ipLists = compileIpLists(contents);
    timeZone = compileTimeZone(contents);
  } catch (err) {
    policySet.retire();
    throw err;
  }
  const settings = contents.settings ?? DEFAULT_BUNDLE_SETTINGS;
  return Object.freeze({
    version: policySet.version,
    policySet,
    settings,
    ipLists,
    timeZone,
    rateLimits: settings.rateLimits,
  });
}

/** Compile a bundle in one go (CLI, tests, small sets); throws `PolicySetError`. */
export function compileBundle(contents: BundleContents, options: CompileOptions = {}): ActiveBundle {
  return bundleOf(contents, compilePolicySet(contents, options));
}

export type ChunkedBundleCompile = Omit<ChunkedCompileResult, 'set'> & { bundle: ActiveBundle };

/** Compile a bundle without stalling the event loop (cedar/compile-async.ts); rejects with `PolicySetError`. */
export async function compileBundleInChunks(
  contents: BundleContents,
  options: CompileOptions = {},
): Promise<ChunkedBundleCompile> {
  const { set, ...steps } = await compilePolicySetInChunks(contents, options);
  return { ...steps, bundle: bundleOf(contents, set) };
}
